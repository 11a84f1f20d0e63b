"""Batch linkage of a health list against every education register held, and health-list de-duplication.

    link(health, education, model=None) -> one outcome row per health row
    dedupe(health, model=None)          -> a cluster id per health row
    explain(outcome_row, model=None)    -> JSON-able account of one decision

Both frames are canonical frames from `app.matching.frames`. Pipeline: blocking passes -> field
comparison levels -> Fellegi-Sunter weights with term-frequency adjustment -> grouping of records that
are the same child on either side -> one-to-one assignment -> thresholds, margin and twin rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from app.core.lru import LruCache
from app.matching.assign import components, one_to_one
from app.matching.blocking import ROW, build_reference, candidate_pairs
from app.matching.compare import compare
from app.matching.params import DEFAULT_MODEL, FIELD_LEVELS, FIELDS, MatchModel, level_code
from app.matching.score import SLIP_RARITY, TermFrequencies, score, weight_for_probability

logger = logging.getLogger(__name__)
REF_ROW = "ref_row"
_GIVEN_DIFFERENT = level_code("given", "different")
_NHS_DIFFERENT = level_code("nhs", "disagree")
# Two records on the same side are only taken as one child when the identity fields themselves agree:
# household fields (surname, address) are what siblings and twins share, and twins' names are often one
# letter apart (Mali/Mari, Siôn/Siân), so a near-miss given name is not enough.
_SAME_CHILD_GIVEN = [level_code("given", lv) for lv in ("exact", "equivalent")]
# A given-name spelling this many times rarer than the one it is a slip away from reads as a slip.
_RARE_RATIO = SLIP_RARITY
_SAME_HOME = [level_code("address", lv) for lv in ("postcode_and_house", "house_and_street")]
_NEAR_ADDRESS = [*_SAME_HOME, *(level_code("address", lv) for lv in ("postcode", "sector"))]
_SAME_CHILD_DOB = [0, *(level_code("dob", lv) for lv in ("exact", "transposed", "one_day", "two_of_three"))]
# Given-name levels with which a record accounts for a row's given name: as its first name, an equivalent
# form, or one of its middle names (not a near spelling: twins' names are often one letter apart).
_RECORD_NAMES = [level_code("given", lv) for lv in ("exact", "equivalent", "alternative")]
_ALTERNATIVE = level_code("given", "alternative")
# Strong fields agreeing outright, for the unclaimed-record review rule: the given name (or an equivalent
# form), a surname (current or former), the birth date, and the home (postcode, or house and street).
_STRONG_AGREEMENT = {
    "given": [level_code("given", lv) for lv in ("exact", "equivalent")],
    "family": [level_code("family", lv) for lv in ("exact", "former")],
    "dob": [level_code("dob", "exact")],
    "address": [level_code("address", lv) for lv in ("postcode_and_house", "postcode", "house_and_street")],
}
# A child who moved within the postcode district, for the unclaimed-record rule when the given name and
# birth date agree outright (the surname may differ: a step-family's, a double-barrelled one dropped).
_SAME_DISTRICT = [*_NEAR_ADDRESS, level_code("address", "district")]
# Homes in different postcode districts of one postcode area.
_OTHER_DISTRICT = [level_code("address", "area")]
# The control for those rules: a row's namesakes (same given name, same place, free records) born within
# `_CONTROL_DAYS` of its birth date but more than `_SLIP_DAYS` away measure how many it has on any one day
# by chance. No keying slip moves a date so far (a day either side, day and month swapped, one part wrong
# are the slips), and the child's own record is not among them.
_CONTROL_DAYS = 60
_SLIP_DAYS = 3
# The pairs the moved-child rules read: given name and birth date outright, and homes in one postcode
# district (`_MOVED_NEARBY`) or the record on a register of the LA the row's list was sent to
# (`_MOVED_IN_LA`). Kept through the possible floor, whatever their weight, so that the rules can find
# them (decision 0017).
_NAMED_ON_THE_DAY = pl.col("given").is_in(_STRONG_AGREEMENT["given"]) & pl.col("dob").is_in(
    _STRONG_AGREEMENT["dob"]
)
_MOVED_NEARBY = _NAMED_ON_THE_DAY & pl.col("address").is_in(_SAME_DISTRICT)
_MOVED_IN_LA = _NAMED_ON_THE_DAY & pl.col("record_in_row_la").fill_null(False)
# Each rule, where its control counts a move as staying (the column both frames hold), and whether the
# control decides row by row (`moved_rows`; decision 0017).
_MOVE_PLACES = {"pc_district": (_MOVED_NEARBY, False), "la": (_MOVED_IN_LA, True)}
# A row's pair of a moved-child shape goes to review only while chance explains at most this share of such
# a pair (the review queue's target: at least 80% of it true links).
_MOVED_CHANCE_SHARE = 0.2
_ADDRESS_DIFFERENT = level_code("address", "different")
_EXACT = level_code("given", "exact")

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
    # Dual registration: the other education records of the same child (ids), for a matched or possible row.
    "other_education_ids": pl.List(pl.Int64()),
}


def score_pairs(
    query: pl.DataFrame,
    reference: pl.DataFrame,
    pairs: pl.DataFrame,
    model: MatchModel,
    tf: TermFrequencies,
    frequencies: Mapping[str, npt.NDArray[np.float64]] | None = None,
    spellings: Mapping[str, npt.NDArray[np.float64]] | None = None,
) -> pl.DataFrame:
    """Compared and weighted pairs: row, ref_row, levels, weights, match_weight, match_probability.

    `frequencies` is `tf.row_frequencies(query)` and `spellings` `tf.record_spellings(reference)`, when
    the caller scores many slices of one pair of frames.
    """
    rows = pairs[ROW].to_numpy()
    ref_rows = pairs[REF_ROW].to_numpy()
    levels = compare(query, reference, rows, ref_rows, values=frequencies is None)
    gathered = None if frequencies is None else {name: f[rows] for name, f in frequencies.items()}
    if spellings is None:
        record_spellings = tf.record_spellings(
            reference.select("given1", "pref_given1", "family", "pref_family")[ref_rows]
        )
    else:
        record_spellings = {name: f[ref_rows] for name, f in spellings.items()}
    scored = score(levels, model, tf, gathered, record_spellings)
    return scored.with_columns(
        pl.Series(ROW, rows, dtype=pl.UInt32), pl.Series(REF_ROW, ref_rows, dtype=pl.UInt32)
    )


def _given_frequency(tf: TermFrequencies, column: str) -> pl.Expr:
    table = tf.tables["given"]
    return pl.col(column).replace_strict(
        table["tf_given_value"], table["tf_given"], default=0.0, return_dtype=pl.Float64
    )


def _one_spelling_rare(tf: TermFrequencies) -> pl.Expr:
    """One of the two given-name spellings is far rarer than the other in the reference."""
    left, right = _given_frequency(tf, "tf_given_value"), _given_frequency(tf, "given_other")
    return pl.min_horizontal(left, right) * _RARE_RATIO <= pl.max_horizontal(left, right)


def _same_child(
    model: MatchModel,
    threshold: float | None = None,
    slip: pl.Expr | None = None,
    vouched: pl.Expr | None = None,
) -> pl.Expr:
    """Two records of one side are the same child: a confident match whose given names are known and agree.

    Requiring known, non-different given names is the twin guard: twins agree on everything else. With
    `vouched` (the record both rows point at names the child by both given names, see `_vouched`) the
    given-name comparison between the two rows is replaced by the record's word for it: the birth dates
    must then agree exactly and the rest of the evidence be confident on its own, without the given-name
    weight.
    """
    cut = threshold or model.thresholds.same_child
    names = pl.col("given").is_in(_SAME_CHILD_GIVEN) | (pl.lit(False) if slip is None else slip)
    confident = pl.col("match_probability") >= cut
    if vouched is not None:
        without_given = pl.col("match_weight") - pl.col("weight_given") >= weight_for_probability(cut)
        born_same_day = pl.col("dob").is_in([0, level_code("dob", "exact")])
        confident = (names & confident) | (vouched & born_same_day & without_given)
        names = names | vouched
    # One name at one home is one child whatever the birth dates say: a list that keyed the date badly
    # still names the child in full at the house the other list gives. Twins and siblings have their own
    # given names; two children of one name under one roof are far rarer than a mis-keyed date.
    same_home_same_name = (
        pl.col("given").is_in(_SAME_CHILD_GIVEN)
        & (pl.col("family") == level_code("family", "exact"))
        & (pl.col("address") == level_code("address", "postcode_and_house"))
    )
    return (
        confident
        & names
        & (pl.col("dob").is_in(_SAME_CHILD_DOB) | same_home_same_name)
        & (pl.col("middle") != level_code("middle", "disagree"))
    )


def _vouched(given: str, other_given: str) -> pl.Expr:
    """The record two rows both point at accounts for both rows' given names, one of them through its
    middle names or both as names it holds outright (its first and its preferred name): one child written
    "Efa" by one list and "Sophie" by another, whose school registers "Efa Sophie"; or "Catrin" and
    "Cati", whose school registers Catrin known as Cati. Twins would need one twin's record to carry the
    other twin's name as a middle or preferred name. (Where the two rows' names agree anyway this adds
    nothing: they are the same child by their names.)"""
    return (
        pl.col(given).is_in(_RECORD_NAMES)
        & pl.col(other_given).is_in(_RECORD_NAMES)
        & (
            (pl.col(given) == _ALTERNATIVE)
            | (pl.col(other_given) == _ALTERNATIVE)
            | ((pl.col(given) == _EXACT) & (pl.col(other_given) == _EXACT))
        )
    ).fill_null(False)


def _same_child_pairs(
    frame: pl.DataFrame,
    left: pl.Series,
    right: pl.Series,
    model: MatchModel,
    tf: TermFrequencies,
    registered_names: bool = False,
    threshold: float | None = None,
    located: bool = False,
    typos: bool = False,
    vouched: pl.Series | None = None,
) -> pl.Series:
    """For pairs of positions within one frame: are the two records the same child?

    With `registered_names` (two education records) the registered first given names, or the middle
    names, must agree and sex must not differ: twins may share a known-as name (Ioan and Iwan both
    "Ioan"), but not their registered names. With `located` the address must also agree (to the
    postcode sector; to the house unless the birth date is exact) or a valid NHS number must: without a record
    on the other side to vouch for them, two same-named children born near the same date are not merged.
    With `typos` a given name one slip away also counts, provided one spelling is far rarer than the other
    in the reference: a slip makes a rare string, whereas twins' one-letter-apart names (Mali, Mari) are
    both ordinary names; and so does a given name found among the other record's middle names.
    `vouched` marks pairs whose given names a record on the other side accounts for (see `_vouched`).
    """
    pairs = pl.DataFrame({ROW: left, REF_ROW: right}, schema={ROW: pl.UInt32, REF_ROW: pl.UInt32})
    if not pairs.height:
        return pl.Series("same", [], dtype=pl.Boolean)
    scored = score_pairs(frame, frame, pairs, model, tf)
    scored = scored.with_columns(rare=_one_spelling_rare(tf))
    slip = (pl.col("given") == level_code("given", "fuzzy_high")) & pl.col("rare") | (
        pl.col("given") == level_code("given", "alternative")
    )
    if vouched is not None:
        scored = scored.with_columns(vouched.alias("vouched"))
    same = _same_child(
        model, threshold, slip if typos else None, None if vouched is None else pl.col("vouched")
    )
    if registered_names:
        names_agree = (
            pl.col("given_registered_same")
            | (pl.col("middle") == level_code("middle", "agree"))
            | (pl.col("given") == level_code("given", "fuzzy_high")) & pl.col("rare")
        )
        same = same & names_agree & (pl.col("sex") != level_code("sex", "disagree"))
    if located:
        near = pl.col("address").is_in(_NEAR_ADDRESS)
        home = pl.col("address").is_in(_SAME_HOME)
        exact_dob = pl.col("dob") == level_code("dob", "exact")
        nhs = pl.col("nhs") == level_code("nhs", "agree")
        same = same & (nhs | (near & (exact_dob | home)))
    # One health list does not hold one child twice: two health rows from the same source (sender and
    # snapshot, passed as `register`) are two children, however alike; twins called Ioan and Iwan are
    # told apart this way. (Education rows are exempt: a child can sit on two schools' rolls.)
    if not registered_names:
        # Two health lists placing the child in different postcode areas, or sent to two LAs with homes in
        # different postcode districts, leave only name and birth date to say "one child listed twice", and
        # a namesake on no register says the same; such a claim must clear the match threshold by the
        # margin, as any other uncorroborated close call must.
        las = frame["la"]
        two_las = (las.gather(pairs[ROW]) != las.gather(pairs[REF_ROW])).fill_null(False)
        apart = (pl.col("address") == level_code("address", "different")) | (
            pl.col("address").is_in(_OTHER_DISTRICT) & pl.lit(two_las)
        )
        clear = (
            weight_for_probability(threshold or model.thresholds.same_child) + model.thresholds.margin_bits
        )
        same = same & (~apart | (pl.col("match_weight") >= clear))
        registers = frame["register"]
        same_source = (registers.gather(pairs[ROW]) == registers.gather(pairs[REF_ROW])).fill_null(False)
        same = same & ~pl.lit(same_source)
    return scored.select(same.alias("same")).to_series()


_SLICE_ROWS = 50_000
# A slice also ends at a row boundary once it holds this many pairs: an ordinary slice of 50,000 rows has
# under a million (about 17 a row at 500k children), one of rows at `blocking.MAX_PAIRS_PER_ROW` would hold
# 15 million, and a slice's scoring memory grows with its pairs.
_SLICE_PAIRS = 2_000_000
_SLICE_THREADS = 2
_KEPT_COLUMNS = [
    ROW, REF_ROW, *FIELDS, *(f"weight_{f}" for f in FIELDS),
    "names_swapped", "prior", "match_weight", "match_probability",
]  # fmt: skip


def link(health: pl.DataFrame, education: pl.DataFrame, model: MatchModel | None = None) -> pl.DataFrame:
    """One row per health row (in input order): outcome, chosen education record, weights, explanation data."""
    model = model or DEFAULT_MODEL
    tf = TermFrequencies.build(education)
    reference = build_reference(education, model.blocking.max_block)
    pairs = candidate_pairs(health, reference).sort(ROW)
    # Score in slices of whole health rows and keep only what a decision can use (pairs that could be
    # possible or better, and each row's best pair for its explanation): memory stays bounded by the
    # slice, not by the number of candidate pairs.
    floor = weight_for_probability(model.thresholds.possible)
    frequencies = tf.row_frequencies(health)
    spellings = tf.record_spellings(education)
    slices = _slices(pairs[ROW].to_numpy(), health.height)

    def kept_of(part: pl.DataFrame) -> pl.DataFrame:
        scored = score_pairs(health, education, part, model, tf, frequencies, spellings)
        scored = scored.select(_KEPT_COLUMNS).with_columns(
            # Whether the record's register is the LA the row's list was sent to (null where either is unknown).
            record_in_row_la=health["la"].gather(scored[ROW]) == education["la"].gather(scored[REF_ROW])
        )
        weights = scored["match_weight"].to_numpy()
        best = _best_of_rows(scored[ROW].to_numpy(), weights, scored[REF_ROW].to_numpy())
        moved = scored.select(pl.any_horizontal(r for r, _ in _MOVE_PLACES.values())).to_series().to_numpy()
        return scored.filter(pl.Series((weights >= floor) | best | moved))

    kept = [kept_of(pairs.slice(*slices[0]))] if slices else [kept_of(pairs)]
    with ThreadPoolExecutor(_SLICE_THREADS) as pool:
        kept += pool.map(lambda at: kept_of(pairs.slice(*at)), slices[1:])
    return _decide(health, education, pl.concat(kept), model, tf)


def _slices(rows: npt.NDArray[np.uint32], height: int) -> list[tuple[int, int]]:
    """(offset, length) of consecutive runs of whole rows of `rows` (sorted): the rows of each block of
    `_SLICE_ROWS` row positions, cut further where they hold more than `_SLICE_PAIRS` pairs."""
    row_starts = np.searchsorted(rows, np.arange(height + 1))
    slices = []
    at = 0
    while at < len(rows):
        first = int(rows[at])
        end = int(row_starts[min((first // _SLICE_ROWS + 1) * _SLICE_ROWS, height)])
        if end - at > _SLICE_PAIRS:
            # Back to the start of the row the pair budget runs out in, but past at least one row.
            end = max(int(row_starts[int(rows[at + _SLICE_PAIRS])]), int(row_starts[first + 1]))
        slices.append((at, end - at))
        at = end
    return slices


def _best_of_rows(
    rows: npt.NDArray[Any], weights: npt.NDArray[np.float64], ref_rows: npt.NDArray[Any]
) -> npt.NDArray[np.bool_]:
    """Each row's best pair (greatest weight, then smallest ref_row) among pairs sorted by row."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    group = np.cumsum(np.r_[True, rows[1:] != rows[:-1]]) - 1
    top = weights == np.maximum.reduceat(weights, starts)[group]
    refs = np.where(top, ref_rows.astype(np.int64), np.iinfo(np.int64).max)
    best: npt.NDArray[np.bool_] = top & (refs == np.minimum.reduceat(refs, starts)[group])
    return best


def _decide(
    health: pl.DataFrame,
    education: pl.DataFrame,
    scored: pl.DataFrame,
    model: MatchModel,
    tf: TermFrequencies,
) -> pl.DataFrame:
    margin = model.thresholds.margin_bits
    eligible = scored.filter(pl.col("match_weight") >= weight_for_probability(model.thresholds.possible))
    eligible = eligible.select(ROW, REF_ROW, "match_weight", "given")
    assigned = one_to_one(eligible, ROW, REF_ROW, "match_weight").select(ROW, REF_ROW)

    # One child listed twice on the health side (a health board and a GP practice): a row whose best
    # candidate went to a row that is the same child shares that record (and gives up any weaker one it
    # was left with). Two different children with one name and birthday each keep their own record,
    # because each has a better candidate of its own.
    best = eligible.group_by(ROW).agg(
        pl.col(REF_ROW, "given").sort_by(["match_weight", REF_ROW], descending=[True, False]).first(),
        pl.col("match_weight").max().alias("best_w"),
    )
    record_given = eligible.select(
        pl.col(ROW).alias("holder"), REF_ROW, pl.col("given").alias("holder_given")
    )
    own = assigned.join(eligible, on=[ROW, REF_ROW]).select(ROW, pl.col("match_weight").alias("own_w"))
    taken = (
        best.join(assigned.rename({ROW: "holder"}), on=REF_ROW, how="inner")
        .filter(pl.col("holder") != pl.col(ROW))
        .join(own, on=ROW, how="left")
        .filter(pl.col("own_w").is_null() | (pl.col("own_w") < pl.col("best_w")))
        .join(record_given, on=["holder", REF_ROW], how="left")
    )
    shared = taken.filter(
        _same_child_pairs(
            health, taken[ROW], taken["holder"], model, tf, typos=True,
            vouched=taken.select(_vouched("given", "holder_given")).to_series(),
        )
    )  # fmt: skip
    assigned = pl.concat([assigned.join(shared.select(ROW), on=ROW, how="anti"), shared.select(ROW, REF_ROW)])
    # Two rows found to be one child share the record; if the record accounts for one row's given name
    # (exact, equivalent, or among its middle names), that row speaks for the other's too: "Hugh" on one
    # list and "Hugh Rose" on another are one child by their names, and the school registers "Rose".
    # The other row's own given-name comparison with the record (different) is then no twin's tell.
    named = pl.concat(
        [
            shared.filter(pl.col("holder_given").is_in(_RECORD_NAMES)).select(ROW),
            shared.filter(pl.col("given").is_in(_RECORD_NAMES)).select(pl.col("holder").alias(ROW)),
        ]
    ).unique()

    # Rivals: close competitors that are not already clearly explained elsewhere, and not the same child
    # (a child on two registers; a child listed twice). A competitor that another child holds is judged by
    # the alternative one-to-one assignment it implies: that child would have to give its own record up
    # (for this child's, or for nothing), so the doubt is the weight lost by the swap as a whole, not by
    # this pair alone. Twins on both lists whose names are one letter apart are then each matched, while
    # a child whose only rival is free for the taking stays possible. Weights are log-odds, so a holder
    # left with nothing counts 0 bits.
    pairs_w = assigned.join(eligible, on=[ROW, REF_ROW], how="left")
    holders = pairs_w.select(
        pl.col(ROW).alias("holder"), pl.col(REF_ROW).alias("held"), pl.col("match_weight").alias("held_w")
    )
    cross = eligible.select(
        pl.col(ROW).alias("cross_row"),
        pl.col(REF_ROW).alias("cross_ref"),
        pl.col("match_weight").alias("cross_w"),
    )
    competitors = eligible.select(
        ROW, REF_ROW, pl.col("match_weight").alias("w2"), pl.col("given").alias("given2")
    )
    swap_loss = (pl.col("match_weight") - pl.col("w2")) + (
        pl.col("held_w") - pl.col("cross_w").fill_null(0.0)
    )
    rival_doubt = (pl.col("w2") >= pl.col("match_weight") - margin) & (
        pl.col("held_w").is_null() | (swap_loss < margin)
    )
    # Another record for this child; its holder (if any) would have to take this child's record instead.
    rival_e = (
        pairs_w.join(competitors.rename({REF_ROW: "rival"}), on=ROW)
        .filter(pl.col("rival") != pl.col(REF_ROW))
        .join(holders, left_on="rival", right_on="held", how="left")
        .join(cross, left_on=["holder", REF_ROW], right_on=["cross_row", "cross_ref"], how="left")
        .filter(rival_doubt)
    )
    # Another child for this record; the record that child holds (if any) would have to come to this one.
    rival_h = (
        pairs_w.join(competitors.rename({ROW: "rival"}), on=REF_ROW)
        .filter(pl.col("rival") != pl.col(ROW))
        .join(holders, left_on="rival", right_on="holder", how="left")
        .join(cross, left_on=[ROW, "held"], right_on=["cross_row", "cross_ref"], how="left")
        .filter(rival_doubt)
    )
    rival_e = rival_e.filter(
        ~_same_child_pairs(
            education, rival_e[REF_ROW], rival_e["rival"], model, tf, registered_names=True, typos=True
        )
    )
    rival_h = rival_h.filter(
        ~_same_child_pairs(
            health, rival_h[ROW], rival_h["rival"], model, tf, typos=True,
            vouched=rival_h.select(_vouched("given", "given2")).to_series(),
        )
    )  # fmt: skip
    runner = (
        pl.concat([rival_e.select(ROW, "w2"), rival_h.select(ROW, "w2")])
        .group_by(ROW)
        .agg(pl.col("w2").max().alias("runner_up_weight"))
    )

    also = _other_registrations(education, eligible, pairs_w, model, tf)

    ranked = scored.sort(["match_weight", REF_ROW], descending=[True, False])
    # A row left without a record is shown its heaviest pair; where the round says moves explain one of
    # the moved-child shapes, a free record of that shape comes first (a namesake's record, held by the
    # namesake's own row, can outweigh the child's own at the old home).
    moved = pl.any_horizontal(
        False,
        *(
            rule & pl.col(ROW).is_in(moved_rows(health, education, assigned, place, by_row).implode())
            for place, (rule, by_row) in _MOVE_PLACES.items()
        ),
    )
    left = ranked.join(assigned, on=ROW, how="anti")
    free_moved = moved & ~pl.col(REF_ROW).is_in(assigned[REF_ROW].implode())
    left = left.sort(free_moved, descending=True, maintain_order=True)
    chosen = pl.concat(
        [
            ranked.join(assigned, on=[ROW, REF_ROW], how="semi").with_columns(assigned=pl.lit(True)),
            left.group_by(ROW, maintain_order=True).first().with_columns(assigned=pl.lit(False)),
        ],
        how="diagonal",
    )  # fmt: skip
    out = (
        pl.DataFrame({ROW: np.arange(health.height, dtype=np.uint32)})
        .join(chosen, on=ROW, how="left")
        .join(runner, on=ROW, how="left")
        .join(named.with_columns(named_by_same_child=pl.lit(True)), on=ROW, how="left")
        .join(also, on=ROW, how="left")
        .join(_closest_to_unclaimed(chosen, assigned), on=ROW, how="left")
        .sort(ROW)
    )
    return _outcomes(health, education, out, model, moved)


def moved_rows(
    health: pl.DataFrame, education: pl.DataFrame, assigned: pl.DataFrame, place: str, by_row: bool
) -> pl.Series:
    """The rows left without a record whose given name and birth date a free record in the same `place`
    shares (a column both frames hold: the postcode district, the LA), where that record is likelier the
    child, moved (and with a new surname), than a namesake: positions (`ROW`).

    An empirical-Bayes estimate on the round's own lists and registers, because the answer is a base rate
    that differs between populations (where families move and take new surnames often, such pairs are
    nearly all the child; at the size of Wales with few such moves, namesakes outnumber them) and between
    names (a common name has more namesakes on any day). For each row, `chance` is the probability of a
    namesake on its birthday by chance, from its namesakes born weeks away (`_CONTROL_DAYS`). The share of
    rows that are moved children is what the rows sharing a birthday with a free namesake exceed chance
    by, over all rows; a row's odds of being moved are that share against its own chance. With `by_row`
    the rule holds for the rows where chance accounts for at most `_MOVED_CHANCE_SHARE`; without it, for
    every such row once chance accounts for at most that share of them all (the district's rule, as
    measured in session 7: a district holds few namesakes of any name, so one row's count says little).
    """
    positions = pl.Series(ROW, np.arange(health.height, dtype=np.uint32))
    left = positions.filter(~positions.is_in(assigned[ROW].implode()))
    day = pl.col("dob").cast(pl.Int32)
    rows = (
        health[left]
        .select(pl.col("given1").alias("g"), pl.col(place).alias("p"), day.alias("t"))
        .with_columns(left)
        .drop_nulls()
    )
    free = education.with_row_index(REF_ROW).filter(~pl.col(REF_ROW).is_in(assigned[REF_ROW].implode()))
    names = (
        pl.concat(
            [free.select(REF_ROW, pl.col(name).alias("g"), pl.col(place).alias("p"), day.alias("t"))
             for name in ("given1", "pref_given1")]
        )
        .drop_nulls()
        .unique()
    )  # fmt: skip
    keys = pl.concat([rows.select("g", "p"), names.select("g", "p")]).unique().with_row_index("k")
    span = 1 << 20  # more days than any birth date is from 1970
    coded = names.join(keys, on=["g", "p"]).select(pl.col("k").cast(pl.Int64) * span + pl.col("t"))
    records = np.sort(coded.to_series().to_numpy())
    asked = rows.join(keys, on=["g", "p"], maintain_order="left")
    at = (asked["k"].cast(pl.Int64) * span + asked["t"]).to_numpy()

    def within(days: int) -> npt.NDArray[np.int64]:
        found: npt.NDArray[np.int64] = np.searchsorted(records, at + days, "right") - np.searchsorted(
            records, at - days, "left"
        )
        return found

    seen = within(0) > 0
    observed = int(seen.sum())
    namesakes = within(_CONTROL_DAYS) - within(_SLIP_DAYS)
    days = 2.0 * (_CONTROL_DAYS - _SLIP_DAYS)
    expected = float((1.0 - np.exp(-namesakes / days)).sum())
    if by_row:
        # Half a namesake added to each row's count: none in four months is not no chance at all.
        chance = 1.0 - np.exp(-(namesakes + 0.5) / days)
        moved_share = max(observed - expected, 0.0) / max(len(at), 1)
        holds = seen & (moved_share > 0) & (chance <= _MOVED_CHANCE_SHARE * (moved_share + chance))
    else:
        holds = seen & (observed > 0) & (expected <= _MOVED_CHANCE_SHARE * observed)
    logger.info(
        "moved-child review rule",
        extra={
            "place": place,
            "observed": observed,
            "chance": round(expected, 1),
            "rows": int(holds.sum()),
        },
    )
    return asked[ROW].filter(pl.Series(holds))


def _closest_to_unclaimed(chosen: pl.DataFrame, assigned: pl.DataFrame) -> pl.DataFrame:
    """Rows left without a record whose best candidate no row holds, the closest to each record (rows tied
    at the closest all: a board's and a GP practice's identical rows of one child): column `unclaimed`."""
    left = chosen.filter(~pl.col("assigned") & ~pl.col(REF_ROW).is_in(assigned[REF_ROW].implode()))
    closest = left.filter(pl.col("match_weight") == pl.col("match_weight").max().over(REF_ROW))
    return closest.select(ROW, unclaimed=pl.lit(True))


def _other_registrations(
    education: pl.DataFrame,
    eligible: pl.DataFrame,
    assigned: pl.DataFrame,
    model: MatchModel,
    tf: TermFrequencies,
) -> pl.DataFrame:
    """For each row given a record: the other records it could match that are the same child as that record
    (a school roll and the EHE register, two schools' rolls), held by no other row. Columns ROW and
    `other_ids` (education ids)."""
    held_elsewhere = assigned.select(pl.col(ROW).alias("holder"), pl.col(REF_ROW).alias("other"))
    others = (
        assigned.select(ROW, REF_ROW)
        .join(eligible.select(ROW, pl.col(REF_ROW).alias("other")), on=ROW)
        .filter(pl.col("other") != pl.col(REF_ROW))
        .join(held_elsewhere, on="other", how="left")
        .filter(pl.col("holder").is_null() | (pl.col("holder") == pl.col(ROW)))
    )
    same = others.filter(
        _same_child_pairs(
            education, others[REF_ROW], others["other"], model, tf, registered_names=True, typos=True
        )
    )
    ids = education["id"].to_numpy()[same["other"].to_numpy()]
    return (
        same.with_columns(pl.Series("other_id", ids, dtype=pl.Int64))
        .group_by(ROW)
        .agg(pl.col("other_id").sort().alias("other_ids"))
    )


def _outcomes(
    health: pl.DataFrame, education: pl.DataFrame, out: pl.DataFrame, model: MatchModel, moved: pl.Expr
) -> pl.DataFrame:
    t = model.thresholds
    p = pl.col("match_probability")
    has_pair = pl.col(REF_ROW).is_not_null()
    assigned = pl.col("assigned").fill_null(False)
    given_differs = (
        (pl.col("given") == _GIVEN_DIFFERENT)
        & ~pl.col("named_by_same_child").fill_null(False)
        & pl.lit(model.given_different_caps_at_possible)
    )
    nhs_differs = (pl.col("nhs") == _NHS_DIFFERENT) & pl.lit(model.nhs_different_caps_at_possible)
    close = (pl.col("runner_up_weight") >= pl.col("match_weight") - t.margin_bits).fill_null(False)
    strong = pl.sum_horizontal(pl.col(f).is_in(levels) for f, levels in _STRONG_AGREEMENT.items())
    # Two strong fields agree and the rest disagree in a way a move explains (a register of the LA the child
    # lives in, or homes in one postcode sector), on a record no list claims: an officer decides in a
    # minute, where a flag sends the LA to a family whose child is at school. Another LA's record in the
    # same postcode area is not enough: at 500,000 children such namesakes outnumber the children moved.
    unclaimed = (
        has_pair
        & ~assigned
        & pl.col("unclaimed").fill_null(False)
        & (strong >= 2)
        # Another LA's record only with homes within one postcode sector (`_NEAR_ADDRESS`): a child at
        # school across the border.
        & (
            (pl.col("record_in_row_la").fill_null(False) | pl.col("address").is_in(_NEAR_ADDRESS))
            & (p >= t.unclaimed_review)
            # Given name and birth date exactly, homes in one postcode district or the record in the row's
            # LA, where the round's control says moves explain such pairs: a move and a new surname explain
            # the rest, whatever the weight (decision 0017).
            | moved
        )
    )
    # A record of another LA's register whose home is in another postcode area: at the size of Wales a
    # child of the same name and birthday elsewhere is likelier than a family that moved that far with
    # neither side told (tuning default at 500,000: 113 such matches were namesakes, 22 the child).
    far_away = (
        has_pair & (pl.col("address") == _ADDRESS_DIFFERENT) & ~pl.col("record_in_row_la").fill_null(True)
    )
    eligible = (assigned & (p >= t.possible) | unclaimed) & ~far_away
    reason = (
        pl.when(~has_pair).then(pl.lit("no_candidate"))
        .when(far_away & (assigned | unclaimed)).then(pl.lit("far_in_another_la"))
        .when(unclaimed).then(pl.lit("unclaimed_record"))
        .when(~assigned & (p >= t.possible)).then(pl.lit("candidate_taken"))
        .when(~eligible).then(pl.lit("below_threshold"))
        .when(p < t.matched).then(pl.lit("below_match_threshold"))
        .when(given_differs).then(pl.lit("given_names_differ"))
        .when(nhs_differs).then(pl.lit("nhs_numbers_differ"))
        .when(close).then(pl.lit("close_runner_up"))
    )  # fmt: skip
    outcome = (
        pl.when(eligible & reason.is_null()).then(pl.lit("matched")).when(eligible).then(pl.lit("possible"))
    )
    ids = pl.DataFrame(
        {REF_ROW: np.arange(education.height, dtype=np.uint32), "education_id": education["id"]}
    )
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
        pl.when(eligible).then(pl.col("other_ids")).cast(pl.List(pl.Int64)).alias("other_education_ids"),
    )


def dedupe(health: pl.DataFrame, model: MatchModel | None = None) -> pl.DataFrame:
    """Cluster health rows that are the same child: columns `id` and `cluster_id` (smallest id in cluster).

    Only pairs whose identity fields agree are joined (the same test as in `link`), so twins, who share
    surname, address and birthday, stay apart; a record with no given name joins nothing.
    """
    model = model or DEFAULT_MODEL
    tf = TermFrequencies.build(health)
    pairs = candidate_pairs(health, build_reference(health, model.blocking.max_block))
    pairs = pairs.filter(pl.col(ROW) < pl.col(REF_ROW))
    same = pairs.filter(_same_child_pairs(health, pairs[ROW], pairs[REF_ROW], model, tf, located=True))
    labels = components(health.height, same[ROW].to_numpy(), same[REF_ROW].to_numpy())
    ids = health["id"].to_numpy()
    # Label each component by its smallest id, not its smallest position.
    smallest = np.full(health.height, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(smallest, labels, ids)
    return pl.DataFrame({"id": health["id"], "cluster_id": pl.Series(smallest[labels], dtype=pl.Int64)})


def explain(row: Mapping[str, Any], model: MatchModel | None = None) -> dict[str, Any]:
    """A JSON-able account of one decision, from a `link` output row (or a real-time candidate's row).

    Lists every field's comparison level and weight in bits, the prior, the total, the probability and
    the thresholds the outcome was decided against. Holds no personal data: levels and numbers only.
    """
    model = model or DEFAULT_MODEL
    fields = []
    for field in FIELDS:
        code = row.get(f"level_{field}")
        code = row.get(field) if code is None else code
        level = "missing" if not code else FIELD_LEVELS[field][int(code) - 1]
        fields.append({"field": field, "level": level, "weight": _rounded(row.get(f"weight_{field}"))})
    return {
        "outcome": row.get("outcome"),
        "reason": row.get("reason"),
        "names_swapped": bool(row.get("names_swapped")),
        "fields": fields,
        "prior": _rounded(row.get("prior")),
        "match_weight": _rounded(row.get("match_weight")),
        "match_probability": row.get("match_probability"),
        "runner_up_weight": _rounded(row.get("runner_up_weight")),
        **_model_facts(model),
    }


def _json_number(column: str) -> pl.Expr:
    value = pl.col(column).cast(pl.Float64)
    return (
        pl.when(value.is_null() | ~value.is_finite())
        .then(pl.lit("null"))
        .otherwise(value.round(3).cast(pl.String))
    )


def stored_evidence() -> pl.Expr:
    """A `link` output row's evidence as compact JSON text, built for every row at once: the reason, the
    field levels (codes, in `FIELDS` order, 0 = missing) and weights, the prior and the runner-up.

    What `explain` adds to it (level names, thresholds, model version and hash) is a function of the model,
    so it is not stored half a million times; `explain_stored` puts it back.
    """
    reason = (
        pl.when(pl.col("reason").is_null())
        .then(pl.lit("null"))
        .otherwise(pl.concat_str(pl.lit('"'), pl.col("reason"), pl.lit('"')))
    )
    swapped = (
        pl.when(pl.col("names_swapped").fill_null(False)).then(pl.lit("true")).otherwise(pl.lit("false"))
    )
    levels = pl.concat_str([pl.col(f"level_{f}").fill_null(0).cast(pl.String) for f in FIELDS], separator=",")
    weights = pl.concat_str([_json_number(f"weight_{f}") for f in FIELDS], separator=",")
    return pl.concat_str(
        pl.lit('{"reason":'), reason,
        pl.lit(',"names_swapped":'), swapped,
        pl.lit(',"prior":'), _json_number("prior"),
        pl.lit(',"runner_up_weight":'), _json_number("runner_up_weight"),
        pl.lit(',"levels":['), levels,
        pl.lit('],"weights":['), weights, pl.lit("]}"),
    )  # fmt: skip


def explain_stored(
    evidence: Mapping[str, Any],
    *,
    outcome: str | None,
    match_weight: float | None,
    match_probability: float | None,
    model: MatchModel,
) -> dict[str, Any]:
    """`explain` of a stored outcome: its `stored_evidence` and columns, with the model that decided it."""
    row: dict[str, Any] = {
        "outcome": outcome,
        "reason": evidence.get("reason"),
        "names_swapped": evidence.get("names_swapped"),
        "prior": evidence.get("prior"),
        "match_weight": match_weight,
        "match_probability": match_probability,
        "runner_up_weight": evidence.get("runner_up_weight"),
    }
    for field, level, weight in zip(FIELDS, evidence["levels"], evidence["weights"], strict=True):
        row[f"level_{field}"] = level
        row[f"weight_{field}"] = weight
    return explain(row, model)


# Explaining real-time candidates re-hashed the whole model each time (~50 us a candidate). Keyed by
# identity, holding the (frozen) model itself so that its id cannot be reused while cached.
_MODEL_FACTS: LruCache[int, tuple[MatchModel, dict[str, Any]]] = LruCache(8)


def _model_facts(model: MatchModel) -> dict[str, Any]:
    """The thresholds, version and content hash an explanation names (a fresh thresholds dict each time)."""
    cached = _MODEL_FACTS.get(id(model))
    if cached is None or cached[0] is not model:
        cached = (model, {"thresholds": model.thresholds.model_dump(), "model_version": model.version,
                          "model_hash": model.content_hash})  # fmt: skip
        _MODEL_FACTS.put(id(model), cached)
    facts = cached[1]
    return {**facts, "thresholds": dict(facts["thresholds"])}


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
