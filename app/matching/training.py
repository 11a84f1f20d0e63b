"""Estimating m and u from the data: u from random pairs, m (and the match share) by EM on blocked pairs.

u is what agreement looks like by chance, so random pairs (nearly all non-matches) estimate it
directly. m cannot be read off unlabelled data; EM on the candidate pairs alternates between "how
likely is each pair a match" and "how often does each level occur among matches", with u held fixed.
The shipped defaults act as pseudo-counts, so a field that the data says little about stays near them.
"""

from __future__ import annotations

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


def _best_per_row(rows: npt.NDArray[np.uint32], total: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    order = np.lexsort((-total, rows))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    best = np.zeros(len(order), dtype=bool)
    best[order[first]] = True
    return best


def estimate_m(
    matrix: npt.NDArray[np.int8],
    rows: npt.NDArray[np.uint32],
    u: dict[str, tuple[float, ...]],
    model: MatchModel,
    prior_bits: float,
    iterations: int,
    prior_strength: float,
) -> dict[str, tuple[float, ...]]:
    """EM for m with u fixed, each field's expectation step leaving that field out.

    Plain EM on blocked pairs finds the strongest cluster, which is "same household" (surname and address
    agree) rather than "same child". Two guards: only each query record's best candidate takes part
    (a sibling is never the best candidate while the child's own record is there), and each field's m is
    judged on pairs whose *other* fields say they match, so a field does not vouch for itself.
    """
    m = {f: np.array(model.fields[f].m) for f in FIELDS}
    log_u = {f: np.log2(np.array([1.0, *u[f]])) for f in FIELDS}
    for _ in range(iterations):
        weights = np.column_stack(
            [(np.log2(np.array([1.0, *m[f]])) - log_u[f])[matrix[:, i]] for i, f in enumerate(FIELDS)]
        )
        total = weights.sum(axis=1) + prior_bits
        best = _best_per_row(rows, total)
        for i, field in enumerate(FIELDS):
            posterior = best / (1.0 + np.exp2(-np.clip(total - weights[:, i], -60, 60)))
            size = len(FIELD_LEVELS[field])
            counts = np.bincount(matrix[:, i], weights=posterior, minlength=size + 1)[1:]
            m[field] = np.array(_normalised(counts + prior_strength * np.array(model.fields[field].m)))
    return {f: tuple(float(x) for x in m[f]) for f in FIELDS}


def train(
    health: pl.DataFrame,
    education: pl.DataFrame,
    model: MatchModel | None = None,
    *,
    random_pairs: int = 200_000,
    iterations: int = 5,
    prior_strength: float = 20.0,
    seed: int = 0,
) -> MatchModel:
    """A model with u and m estimated on these frames; thresholds and rules carried over from `model`."""
    base = model or DEFAULT_MODEL
    u = estimate_u(health, education, base, random_pairs, seed)
    pairs = candidate_pairs(health, build_reference(education, base.blocking.max_block))
    matrix = _level_matrix(compare(health, education, pairs[ROW].to_numpy(), pairs[REF_ROW].to_numpy()))
    m = estimate_m(
        matrix, pairs[ROW].to_numpy(), u, base, base.prior_bits(education.height), iterations, prior_strength
    )
    fields = {f: FieldParams(m=m[f], u=u[f]) for f in FIELDS}
    trained = base.model_copy(update={"fields": fields})
    return trained.model_copy(update={"version": f"trained-{trained.content_hash[:8]}"})
