"""Estimating m and u from the data: u from random pairs, m (and the match share) by EM on blocked pairs.

u is what agreement looks like by chance, so random pairs (nearly all non-matches) estimate it
directly. m cannot be read off unlabelled data; EM on the candidate pairs alternates between "how
likely is each pair a match" and "how often does each level occur among matches", with u held fixed.
The shipped defaults act as pseudo-counts, so a field that the data says little about stays near them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import polars as pl

from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.compare import compare
from app.matching.engine import REF_ROW
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS, FieldParams, MatchModel

_FLOOR = 1e-6


def _level_matrix(levels: pl.DataFrame) -> npt.NDArray[np.int8]:
    return np.column_stack([levels[f].to_numpy() for f in FIELDS]).astype(np.int8)


def _normalised(counts: npt.NDArray[np.float64]) -> tuple[float, ...]:
    probabilities = np.maximum(counts / max(counts.sum(), _FLOOR), _FLOOR)
    return tuple(float(p) for p in probabilities / probabilities.sum())


def estimate_u(
    health: pl.DataFrame, education: pl.DataFrame, model: MatchModel, pairs: int, seed: int
) -> dict[str, tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, health.height, pairs)
    refs = rng.integers(0, education.height, pairs)
    matrix = _level_matrix(compare(health, education, rows, refs))
    estimated = {}
    for i, field in enumerate(FIELDS):
        size = len(FIELD_LEVELS[field])
        counts = np.bincount(matrix[:, i], minlength=size + 1)[1:].astype(np.float64)
        # Half a pseudo-count per level: a level never seen at random still gets a small u.
        prior = np.array(model.fields[field].u) * 0.5 * size
        estimated[field] = _normalised(counts + prior)
    return estimated


def estimate_m(
    matrix: npt.NDArray[np.int8],
    u: dict[str, tuple[float, ...]],
    model: MatchModel,
    iterations: int,
    prior_strength: float,
) -> tuple[dict[str, tuple[float, ...]], float]:
    """EM for m and the share of candidate pairs that match, u fixed. Returns (m per field, share)."""
    m = {f: np.array(model.fields[f].m) for f in FIELDS}
    log_u = {f: np.log(np.array([1.0, *u[f]])) for f in FIELDS}
    share = 0.1
    for _ in range(iterations):
        bayes = np.zeros(len(matrix))
        for i, field in enumerate(FIELDS):
            log_m = np.log(np.array([1.0, *m[field]]))
            bayes += (log_m - log_u[field])[matrix[:, i]]
        log_odds = np.clip(bayes + math.log(share / (1 - share)), -50, 50)
        posterior = 1.0 / (1.0 + np.exp(-log_odds))
        share = float(np.clip(posterior.mean(), 1e-6, 1 - 1e-6))
        for i, field in enumerate(FIELDS):
            size = len(FIELD_LEVELS[field])
            counts = np.bincount(matrix[:, i], weights=posterior, minlength=size + 1)[1:]
            m[field] = np.array(_normalised(counts + prior_strength * np.array(model.fields[field].m)))
    return {f: tuple(float(x) for x in m[f]) for f in FIELDS}, share


def train(
    health: pl.DataFrame,
    education: pl.DataFrame,
    model: MatchModel | None = None,
    *,
    random_pairs: int = 200_000,
    iterations: int = 15,
    prior_strength: float = 50.0,
    seed: int = 0,
) -> MatchModel:
    """A model with u and m estimated on these frames; thresholds and rules carried over from `model`."""
    base = model or DEFAULT_MODEL
    u = estimate_u(health, education, base, random_pairs, seed)
    pairs = candidate_pairs(health, build_reference(education, base.blocking.max_block))
    matrix = _level_matrix(compare(health, education, pairs[ROW].to_numpy(), pairs[REF_ROW].to_numpy()))
    m, _ = estimate_m(matrix, u, base, iterations, prior_strength)
    fields = {f: FieldParams(m=m[f], u=u[f]) for f in FIELDS}
    trained = base.model_copy(update={"fields": fields})
    return trained.model_copy(update={"version": f"trained-{trained.content_hash[:8]}"})
