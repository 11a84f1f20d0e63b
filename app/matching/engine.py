"""Batch linkage of a health list against every education register held, and health-list de-duplication.

    link(health, education, model=None) -> one outcome row per health row
    dedupe(health, model=None)          -> a cluster id per health row
    explain(outcome_row, model=None)    -> JSON-able account of one decision

Both frames are canonical frames from `app.matching.frames`. Pipeline: blocking passes -> field
comparison levels -> Fellegi-Sunter weights with term-frequency adjustment -> grouping of records that
are the same child on either side -> one-to-one assignment -> thresholds, margin and twin rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from app.matching.assign import components, one_to_one
from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.compare import compare
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS, MatchModel, level_code
from app.matching.score import TermFrequencies, score, weight_for_probability

REF_ROW = "ref_row"
_GIVEN_DIFFERENT = level_code("given", "different")
# Two records on the same side are only merged as one child when the identity fields themselves agree:
# household fields (surname, address) are what siblings and twins share.
_SAME_CHILD_GIVEN = [level_code("given", lv) for lv in ("exact", "equivalent", "alternative", "fuzzy_high")]
_SAME_CHILD_DOB = [level_code("dob", lv) for lv in ("exact", "transposed", "one_day")]

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "health_id": pl.Int64(),
    "outcome": pl.String(),
    "education_id": pl.Int64(),
    "match_weight": pl.Float64(),
    "match_probability": pl.Float64(),
    "runner_up_weight": pl.Float64(),
    "reason": pl.String(),
    "names_swapped": pl.Boolean(),
    "prior": pl.Float64(),
    **{f"level_{f}": pl.Int8() for f in FIELDS},
    **{f"weight_{f}": pl.Float64() for f in FIELDS},
    "model_version": pl.String(),
    "model_hash": pl.String(),
}


def score_pairs(
    query: pl.DataFrame,
    reference: pl.DataFrame,
    pairs: pl.DataFrame,
    model: MatchModel,
    tf: TermFrequencies,
) -> pl.DataFrame:
    """Compared and weighted pairs: row, ref_row, levels, weights, match_weight, match_probability."""
    rows = pairs[ROW].to_numpy()
    ref_rows = pairs[REF_ROW].to_numpy()
    levels = compare(query, reference, rows, ref_rows)
    scored = score(levels, model, tf)
    return scored.with_columns(pl.Series(ROW, rows, dtype=pl.UInt32), pl.Series(REF_ROW, ref_rows, dtype=pl.UInt32))


def _same_child(scored: pl.DataFrame, model: MatchModel) -> pl.Expr:
    """Two records of one side are the same child: a confident match whose given names are known and agree.

    Requiring known, non-different given names is the twin guard: twins agree on everything else.
    """
    return (
        (pl.col("match_probability") >= model.thresholds.matched)
        & pl.col("given").is_in(_SAME_CHILD_GIVEN)
        & pl.col("dob").is_in(_SAME_CHILD_DOB)
    )


def _groups(
    frame: pl.DataFrame, left: np.ndarray[Any, Any], right: np.ndarray[Any, Any], model: MatchModel, tf: TermFrequencies
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Group positions of `frame` that are the same child, testing only the given pairs."""
    if not len(left):
        return np.arange(frame.height, dtype=np.int64)
    pairs = pl.DataFrame({ROW: left, REF_ROW: right}, schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
    scored = score_pairs(frame, frame, pairs, model, tf)
    same = scored.filter(_same_child(scored, model))
    return components(frame.height, same[ROW].to_numpy(), same[REF_ROW].to_numpy())


def _competitor_pairs(eligible: pl.DataFrame, shared: str, member: str) -> tuple[np.ndarray[Any, Any], ...]:
    """Pairs of `member` positions that are candidates for the same `shared` position."""
    slim = eligible.select(shared, member)
    crowded = slim.filter(pl.len().over(shared) > 1)
    joined = crowded.join(crowded, on=shared, suffix="_b").filter(pl.col(member) < pl.col(f"{member}_b"))
    joined = joined.select(member, f"{member}_b").unique()
    return joined[member].to_numpy(), joined[f"{member}_b"].to_numpy()


def link(health: pl.DataFrame, education: pl.DataFrame, model: MatchModel | None = None) -> pl.DataFrame:
    """One row per health row (in input order): outcome, chosen education record, weights, explanation data."""
    model = model or DEFAULT_MODEL
    tf = TermFrequencies.build(education)
    reference = build_reference(education, model.blocking.max_block)
    pairs = candidate_pairs(health, reference)
    scored = score_pairs(health, education, pairs, model, tf)
    return _decide(health, education, scored, model, tf)


def _decide(
    health: pl.DataFrame, education: pl.DataFrame, scored: pl.DataFrame, model: MatchModel, tf: TermFrequencies
) -> pl.DataFrame:
    possible_weight = weight_for_probability(model.thresholds.possible)
    margin = model.thresholds.margin_bits
    eligible = scored.filter(pl.col("match_weight") >= possible_weight)

    # Records on one side that compete for the same record on the other may be one child listed twice
    # (a health board and a GP practice; a school roll and an EOTAS register): group them first, so the
    # one-to-one rule applies to children, not to rows.
    health_group = _groups(health, *_competitor_pairs(eligible, REF_ROW, ROW), model, tf)
    education_group = _groups(education, *_competitor_pairs(eligible, ROW, REF_ROW), model, TermFrequencies.build(education))
    eligible = eligible.with_columns(
        hg=pl.Series(health_group[eligible[ROW].to_numpy()]),
        eg=pl.Series(education_group[eligible[REF_ROW].to_numpy()]),
    )
    group_pairs = eligible.group_by("hg", "eg").agg(pl.col("match_weight").max().alias("w"))
    assigned = one_to_one(group_pairs, "hg", "eg", "w")

    # A rival is a competing candidate that is not already clearly explained by its own assignment.
    own_h = assigned.select("hg", pl.col("w").alias("own_h"))
    own_e = assigned.select("eg", pl.col("w").alias("own_e"))
    rivals = group_pairs.join(own_h, on="hg", how="left").join(own_e, on="eg", how="left")
    threat_to_e = rivals.filter(pl.col("own_h").is_null() | (pl.col("own_h") < pl.col("w") + margin))
    threat_to_h = rivals.filter(pl.col("own_e").is_null() | (pl.col("own_e") < pl.col("w") + margin))
    runner_e = assigned.join(threat_to_e.select("eg", pl.col("hg").alias("hg2"), pl.col("w").alias("w2")), on="eg")
    runner_h = assigned.join(threat_to_h.select("hg", pl.col("eg").alias("eg2"), pl.col("w").alias("w2")), on="hg")
    runner = pl.concat(
        [
            runner_e.filter(pl.col("hg2") != pl.col("hg")).select("hg", "w2"),
            runner_h.filter(pl.col("eg2") != pl.col("eg")).select("hg", "w2"),
        ]
    ).group_by("hg").agg(pl.col("w2").max().alias("runner_up_weight"))
    assigned = assigned.join(runner, on="hg", how="left")

    # Each health row reports its own best pair inside its group's assigned education group.
    rows = pl.DataFrame({ROW: np.arange(health.height, dtype=np.uint32), "hg": health_group})
    rows = rows.join(assigned.select("hg", "eg", "runner_up_weight"), on="hg", how="left")
    scored_g = scored.with_columns(eg=pl.Series(education_group[scored[REF_ROW].to_numpy()]))
    ranked = scored_g.sort(["match_weight", REF_ROW], descending=[True, False])
    in_group = rows.join(ranked, on=[ROW, "eg"], how="inner").group_by(ROW, maintain_order=True).first()
    best_any = ranked.group_by(ROW, maintain_order=True).first()
    chosen = pl.concat(
        [
            in_group.drop("hg", "eg", "runner_up_weight", strict=False).with_columns(assigned=pl.lit(True)),
            best_any.join(in_group.select(ROW), on=ROW, how="anti").drop("eg").with_columns(assigned=pl.lit(False)),
        ],
        how="diagonal_relaxed",
    )
    out = rows.select(ROW, "runner_up_weight").join(chosen, on=ROW, how="left").sort(ROW)
    return _outcomes(health, education, out, model)


def _outcomes(health: pl.DataFrame, education: pl.DataFrame, out: pl.DataFrame, model: MatchModel) -> pl.DataFrame:
    t = model.thresholds
    p = pl.col("match_probability")
    has_pair = pl.col(REF_ROW).is_not_null()
    assigned = pl.col("assigned").fill_null(False)
    given_differs = (pl.col("given") == _GIVEN_DIFFERENT) & pl.lit(model.given_different_caps_at_possible)
    close = (pl.col("runner_up_weight") >= pl.col("match_weight") - t.margin_bits).fill_null(False)
    eligible = assigned & (p >= t.possible)
    reason = (
        pl.when(~has_pair).then(pl.lit("no_candidate"))
        .when(~assigned & (p >= t.possible)).then(pl.lit("candidate_taken"))
        .when(~eligible).then(pl.lit("below_threshold"))
        .when(p < t.matched).then(pl.lit("below_match_threshold"))
        .when(given_differs).then(pl.lit("given_names_differ"))
        .when(close).then(pl.lit("close_runner_up"))
    )  # fmt: skip
    outcome = pl.when(eligible & reason.is_null()).then(pl.lit("matched")).when(eligible).then(pl.lit("possible"))
    ids = pl.DataFrame({REF_ROW: np.arange(education.height, dtype=np.uint32), "education_id": education["id"]})
    out = out.join(ids, on=REF_ROW, how="left", maintain_order="left")
    return out.select(
        pl.Series("health_id", health["id"].to_numpy()[out[ROW].to_numpy()], dtype=pl.Int64),
        outcome.otherwise(pl.lit("unmatched")).alias("outcome"),
        pl.col("education_id").cast(pl.Int64),
        pl.col("match_weight").cast(pl.Float64),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("runner_up_weight").cast(pl.Float64),
        reason.alias("reason"),
        pl.col("names_swapped").fill_null(False),
        pl.col("prior").cast(pl.Float64),
        *[pl.col(f).alias(f"level_{f}") for f in FIELDS],
        *[pl.col(f"weight_{f}").cast(pl.Float64) for f in FIELDS],
        pl.lit(model.version).alias("model_version"),
        pl.lit(model.content_hash).alias("model_hash"),
    )
