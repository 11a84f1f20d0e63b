"""Real-time lookup: one (or a few) child records against an in-memory index of every education record.

`EducationIndex.build` does the heavy work once, vectorised: the canonical frame, term frequencies and,
for the same blocking passes and block-size cap as batch `link`, every reference record's keys. A key is
a 64-bit mix of its parts (strings coded through a vocabulary of the values the reference holds, dates as
day numbers) that plain Python reproduces exactly, so a query needs no polars at all: the record is
normalised and compared by `app.matching.single`, its keys are mixed in Python, one binary search over
the sorted keys of all passes finds the candidates, and the few candidate pairs are scored with the batch
model's levels, weights and term-frequency adjustments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import getitem
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from app.matching.blocking import MAX_PAIRS_PER_ROW, unplaced
from app.matching.engine import explain
from app.matching.params import DEFAULT_MODEL, MatchModel, level_code
from app.matching.score import TermFrequencies
from app.matching.single import REFERENCE_COLUMNS, Canonical, Scorer, canonical_record, compare_pair

_MASK = (1 << 64) - 1
_FMIX_1 = 0xFF51AFD7ED558CCD
_FMIX_2 = 0xC4CEB9FE1A85EC53
_EPOCH = dt.date(1970, 1, 1)
_STRING_PARTS = frozenset({"name", "g", "f", "postcode", "nhs"})


def _date_variants(record: Mapping[str, Any]) -> list[dt.date]:
    """Exact, the day either side, and day/month swapped (as `blocking` varies the query side)."""
    dob: dt.date | None = record["dob"]
    if dob is None:
        return []
    variants = [dob, dob + dt.timedelta(days=1), dob - dt.timedelta(days=1)]
    if dob.day <= 12 and dob.day != dob.month:
        variants.append(dt.date(dob.year, dob.day, dob.month))
    return variants


def _given_groups(record: Mapping[str, Any]) -> list[Any]:
    return [record["given_c1"], record["given_c2"], record["pref_c1"], record["pref_c2"]]


def _family_keys(record: Mapping[str, Any]) -> list[Any]:
    return [record["family"], record["pref_family"], *record["former_family"]]


@dataclass(frozen=True)
class _Pass:
    """One blocking pass: its parts in order, the query's values of each (lists: every combination is a
    key), and the reference side as polars expressions over the canonical frame."""

    name: str
    parts: tuple[str, ...]
    query: Callable[[Mapping[str, Any]], tuple[list[Any], ...]]
    reference: Callable[[], tuple[pl.Expr, ...]]


def _groups_expr() -> pl.Expr:
    return pl.concat_list("given_c1", "given_c2", "pref_c1", "pref_c2")


def _family_expr() -> pl.Expr:
    return pl.concat_list(pl.col("family"), pl.col("pref_family"), pl.col("former_family"))


def _names_and(
    *dates: str,
) -> tuple[Callable[[Mapping[str, Any]], tuple[list[Any], ...]], Callable[[], tuple[pl.Expr, ...]]]:
    return (
        lambda r: (_given_groups(r), _family_keys(r), *([r[d]] for d in dates)),
        lambda: (_groups_expr(), _family_expr(), *(pl.col(d) for d in dates)),
    )


# The passes of `app.matching.blocking.PASSES`, part for part (a test holds the names in step).
PASSES: tuple[_Pass, ...] = (
    _Pass("dob_name", ("dob", "name"), lambda r: ([r["dob"]], r["name_keys"]),
          lambda: (pl.col("dob"), pl.col("name_keys"))),
    _Pass("near_dob_names", ("dob", "g", "f"), lambda r: (_date_variants(r), _given_groups(r), [r["family_ph"]]),
          lambda: (pl.col("dob"), _groups_expr(), pl.col("family_ph"))),
    _Pass("postcode_names", ("postcode", "name"), lambda r: ([r["postcode"]], r["name_keys"]),
          lambda: (pl.col("postcode"), pl.col("name_keys"))),
    _Pass("postcode_dob", ("postcode", "dob"), lambda r: ([r["postcode"]], [r["dob"]]),
          lambda: (pl.col("postcode"), pl.col("dob"))),
    _Pass("names_year_month", ("g", "f", "y", "m"), *_names_and("dob_y", "dob_m")),
    _Pass("names_year_day", ("g", "f", "y", "d"), *_names_and("dob_y", "dob_d")),
    _Pass("names_month_day", ("g", "f", "m", "d"), *_names_and("dob_m", "dob_d")),
    _Pass("nhs", ("nhs",), lambda r: ([r["nhs"]],), lambda: (pl.col("nhs"),)),
    # Only reference records with neither birth date nor postcode are keyed (`blocking.unplaced`).
    _Pass("names_unplaced", ("g", "f"), lambda r: (_given_groups(r), _family_keys(r)),
          lambda: (unplaced(_groups_expr()), _family_expr())),
)  # fmt: skip


def _fmix(key: int) -> int:
    """The murmur3 64-bit finaliser: every input bit avalanches into every output bit."""
    key ^= key >> 33
    key = (key * _FMIX_1) & _MASK
    key ^= key >> 33
    key = (key * _FMIX_2) & _MASK
    return key ^ (key >> 33)


def _number(value: Any) -> int:
    """A date or whole-number key part as the reference's keys hold it (dates as day numbers)."""
    if isinstance(value, dt.date):
        return (value - _EPOCH).days & _MASK
    return int(value) & _MASK


# A key starts from its pass, itself mixed, and folds each part in with the finaliser. The pass must be
# mixed before the first part is XORed in: started from the bare pass number, (pass 5, name code 419) and
# (pass 6, code 416) gave the same XOR, so a key of one pass met a key of another and pulled an unrelated
# record into a block, now and then, depending on how the vocabulary happened to be numbered.
# Where each pass's keys start (`query_keys` folds the parts in with `_fmix`, as `_mix_numpy` does).
_PASS_STARTS = [_fmix(seed) for seed in range(1, len(PASSES) + 1)]


def _mix_numpy(seed: int, parts: Sequence[npt.NDArray[np.uint64]]) -> npt.NDArray[np.uint64]:
    key = np.full(len(parts[0]), _fmix(seed), dtype=np.uint64)
    shift = np.uint64(33)
    for part in parts:
        key ^= part
        key ^= key >> shift
        key *= np.uint64(_FMIX_1)
        key ^= key >> shift
        key *= np.uint64(_FMIX_2)
        key ^= key >> shift
    return key


@dataclass(frozen=True)
class BlockIndex:
    """Every pass's reference keys in one sorted array (the pass is mixed into the key), over-full keys
    already dropped, with the row each came from; `vocabulary` codes the strings the reference holds."""

    keys: npt.NDArray[np.uint64]
    rows: npt.NDArray[np.uint32]
    vocabulary: dict[str, int]

    @classmethod
    def build(cls, frame: pl.DataFrame, max_block: int) -> BlockIndex:
        longs = []
        for block_pass in PASSES:
            named = dict(zip(block_pass.parts, block_pass.reference(), strict=True))
            long = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), **named)
            for name, dtype in long.schema.items():
                if isinstance(dtype, pl.List):
                    long = long.explode(name)
            longs.append(long.drop_nulls())
        strings = pl.concat(
            [long[p] for long, block_pass in zip(longs, PASSES, strict=True) for p in block_pass.parts
             if p in _STRING_PARTS]
        ).unique()  # fmt: skip
        vocabulary = {value: code for code, value in enumerate(strings.to_list(), start=1)}
        coded = pl.Series(strings.to_list(), dtype=pl.String())
        codes = pl.Series(range(1, len(vocabulary) + 1), dtype=pl.UInt64())
        all_keys, all_rows = [], []
        for seed, (long, block_pass) in enumerate(zip(longs, PASSES, strict=True), start=1):
            if not long.height:
                continue
            parts = []
            for part in block_pass.parts:
                column = long[part]
                if part in _STRING_PARTS:
                    column = column.replace_strict(coded, codes, return_dtype=pl.UInt64())
                parts.append(column.cast(pl.Int64).to_numpy().astype(np.uint64))
            keys = _mix_numpy(seed, parts)
            # As in batch blocking: a key held by more than `max_block` reference entries identifies no one.
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            kept = counts[inverse] <= max_block
            all_keys.append(keys[kept])
            all_rows.append(long["row"].to_numpy()[kept])
        if not all_keys:
            return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint32), vocabulary)
        keys = np.concatenate(all_keys)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], np.concatenate(all_rows)[order], vocabulary)

    def query_keys(self, record: Mapping[str, Any]) -> tuple[list[int], list[int]]:
        """The record's keys in every pass: each combination of its part values, nulls and values the
        reference never holds skipped (no reference key could contain them); and how many keys each pass
        gave, in `PASSES` order."""
        vocabulary = self.vocabulary
        found: list[int] = []
        counts: list[int] = []
        for start, block_pass in zip(_PASS_STARTS, PASSES, strict=True):
            coded = [
                {code for value in values if (code := vocabulary.get(value)) is not None}
                if part in _STRING_PARTS
                else {_number(value) for value in values if value is not None}
                for part, values in zip(block_pass.parts, block_pass.query(record), strict=True)
            ]
            # Mixed part by part, so that combinations sharing their first parts share that work (no key,
            # nothing to mix, where a part has no value).
            keys = [start] if all(coded) else []
            for codes in coded:
                keys = [_fmix(key ^ code) for key in keys for code in codes]
            found.extend(keys)
            counts.append(len(keys))
        return found, counts

    def candidates(
        self, record: Mapping[str, Any], max_pairs: int = MAX_PAIRS_PER_ROW
    ) -> npt.NDArray[np.uint32]:
        """Reference rows sharing any blocking key with the record, ascending; past `max_pairs`, the
        `max_pairs` that the most passes found, then the lowest rows (as batch `candidate_pairs`)."""
        found, per_pass = self.query_keys(record)
        keys = np.array(found, dtype=np.uint64)
        lo, hi = self.keys.searchsorted(keys, side="left"), self.keys.searchsorted(keys, side="right")
        # A few keys find rows: plain Python over them costs less than numpy's calls.
        held = [self.rows[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True) if b > a]
        if not held:
            return np.empty(0, dtype=np.uint32)
        rows = np.concatenate(held)
        distinct = np.array(sorted(set(rows.tolist())), dtype=np.uint32)
        if len(distinct) <= max_pairs:
            return distinct
        # Each (pass, row) once, then the passes that found each row.
        passes = np.repeat(np.repeat(np.arange(len(per_pass), dtype=np.uint64), per_pass), hi - lo)
        distinct, found_by = np.unique(
            np.unique(passes << np.uint64(32) | rows.astype(np.uint64)) & np.uint64(0xFFFFFFFF),
            return_counts=True,
        )
        best = np.lexsort((distinct, -found_by))[:max_pairs]
        return np.sort(distinct[best]).astype(np.uint32)


@dataclass(frozen=True)
class Candidate:
    education_id: int
    score: float  # total match weight in bits
    probability: float
    outcome: str
    pair: Mapping[str, Any] = field(repr=False)
    model: MatchModel = field(repr=False)

    @cached_property
    def explanation(self) -> dict[str, Any]:
        """Built when asked for: most candidates are below the 'possible' threshold or another LA's, and
        are never explained to anyone."""
        return explain({**self.pair, "outcome": self.outcome}, self.model)


_GIVEN_DIFFERENT = level_code("given", "different")
_NHS_DIFFERENT = level_code("nhs", "disagree")


def threshold_outcome(pair: Mapping[str, Any], model: MatchModel) -> str:
    """What the thresholds alone say of one pair, without the batch's one-to-one and margin rules (a query
    has no other side to compete with); given names that differ outright, or two valid NHS numbers that
    differ, still cap it at 'possible'."""
    probability, thresholds = pair["match_probability"], model.thresholds
    given_differs = model.given_different_caps_at_possible and pair["given"] == _GIVEN_DIFFERENT
    nhs_differs = model.nhs_different_caps_at_possible and pair["nhs"] == _NHS_DIFFERENT
    if probability >= thresholds.matched and not given_differs and not nhs_differs:
        return "matched"
    return "possible" if probability >= thresholds.possible else "unmatched"


@dataclass(frozen=True)
class CodedColumns:
    """The columns pairs are compared on, dictionary-encoded: a (rows x columns) array of codes and, per
    column, the distinct values in code order. A query gathers its few candidate rows as plain dicts with
    one array index and a lookup per value, where selecting them from the polars frame cost ~0.1-0.2 ms
    of fixed overhead per query. Values are shared between rows: read them, never change them."""

    names: tuple[str, ...]
    codes: npt.NDArray[np.uint32]
    values: tuple[list[Any], ...]

    @classmethod
    def build(cls, frame: pl.DataFrame) -> CodedColumns:
        codes = np.empty((frame.height, frame.width), dtype=np.uint32)
        values = []
        for at, name in enumerate(frame.columns):
            # group_by compares lists and nulls exactly (no string key that two values could share).
            distinct = (
                frame.select(pl.col(name).alias("value"))
                .with_row_index("row")
                .group_by("value", maintain_order=True)
                .agg("row")
                .with_row_index("code")
            )
            rows = distinct.select("code", "row").explode("row")
            codes[rows["row"].to_numpy(), at] = rows["code"].to_numpy()
            values.append(distinct["value"].to_list())
        return cls(tuple(frame.columns), codes, tuple(values))

    def rows(self, at: npt.NDArray[np.uint32]) -> list[dict[str, Any]]:
        names, values = self.names, self.values
        return [dict(zip(names, map(getitem, values, row), strict=True)) for row in self.codes[at].tolist()]


@dataclass(frozen=True)
class EducationIndex:
    frame: pl.DataFrame
    model: MatchModel
    blocks: BlockIndex
    scorer: Scorer
    # Only what pairs are compared on: gathering the blocking-key lists too would double a query's cost.
    compared: CodedColumns
    ids: list[int]

    @classmethod
    def build(cls, education: pl.DataFrame, model: MatchModel | None = None) -> EducationIndex:
        model = model or DEFAULT_MODEL
        return cls(
            education,
            model,
            BlockIndex.build(education, model.blocking.max_block),
            Scorer.of(model, TermFrequencies.build(education)),
            CodedColumns.build(education.select(REFERENCE_COLUMNS)),
            education["id"].to_list(),
        )

    def scored(self, record: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        """(reference row, scored pair) for every candidate of one canonical record."""
        rows = self.blocks.candidates(record)
        if not len(rows):
            return []
        found = rows.tolist()
        compared = [compare_pair(record, reference) for reference in self.compared.rows(rows)]
        return list(zip(found, self.scorer.score_all(compared), strict=True))

    def positioned(
        self, records: pl.DataFrame | Sequence[Mapping[str, Any]], limit: int = 5
    ) -> list[list[tuple[Candidate, int]]]:
        """Best `limit` candidates per query record with their row in the frame, strongest first."""
        canonical: list[Canonical] = (
            records.to_dicts()
            if isinstance(records, pl.DataFrame)
            else [canonical_record(r) for r in records]
        )
        results = []
        for record in canonical:
            ranked = sorted(self.scored(record), key=lambda found: (-found[1]["match_weight"], found[0]))
            top = []
            for row, pair in ranked[:limit]:
                outcome = threshold_outcome(pair, self.model)
                candidate = Candidate(
                    education_id=self.ids[row],
                    score=float(pair["match_weight"]),
                    probability=float(pair["match_probability"]),
                    outcome=outcome,
                    pair=pair,
                    model=self.model,
                )
                top.append((candidate, row))
            results.append(top)
        return results

    def query(
        self, records: pl.DataFrame | Sequence[Mapping[str, Any]], limit: int = 5
    ) -> list[list[Candidate]]:
        """Best `limit` candidates per query record, strongest first (a canonical frame or record dicts)."""
        return [[candidate for candidate, _ in found] for found in self.positioned(records, limit)]
