"""Field comparisons for candidate pairs: one comparison level per field, computed column-wise.

Input is two canonical frames and two equal-length arrays of row positions; output is one row per pair
with an Int8 level per field (codes from `app.matching.params.FIELD_LEVELS`, 0 = missing), whether the
names were matched the other way round, and the values needed for term-frequency adjustment. String
similarities are computed once per distinct pair of strings with `rapidfuzz.process.cpdist`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from app.matching.params import FIELD_LEVELS, level_code

FUZZY_HIGH = 0.92
FUZZY_LOW = 0.85
STREET_SIMILAR = 0.85

# Canonical string columns the comparisons read, as integer codes of one dictionary shared by both frames:
# equality of codes is equality of strings, and a gather of codes is a fraction of a gather of strings.
_CODED = (
    "given1", "pref_given1", "given_c1", "given_c2", "pref_c1", "pref_c2", "given_ph", "family",
    "pref_family", "family_ph", "postcode", "pc_sector", "pc_district", "pc_area", "house_no", "street",
    "sex", "nhs",
)  # fmt: skip
_CODED_LISTS = ("family_tokens", "former_family", "given_alt")
_PLAIN = ("dob", "dob_y", "dob_m", "dob_d")
_NULL_CODE = np.uint32(0xFFFFFFFF)
_ROW = "row"
_VALUE_COLUMNS = ("tf_given_value", "given_other", "tf_family_value", "tf_postcode_value")
# Fewer pairs than the frames' rows divided by this: encode only the records the pairs touch.
_FEW_PAIRS = 4


@dataclass(frozen=True)
class _CodedList:
    """One frame's list column as codes: row r's elements are codes[offsets[r]:offsets[r + 1]].

    Comparisons expand each pair's few elements straight from these arrays instead of gathering lists per
    pair. The lists hold no nulls (tokens of non-null names), so a null value (the null code) is in none.
    """

    offsets: npt.NDArray[np.int64]
    codes: npt.NDArray[np.uint32]
    sizes: npt.NDArray[np.int64]
    # The last expansion (rows, (i, element)): one compare expands the same rows of a list several times.
    last: list[tuple[npt.NDArray[Any], tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]]] = field(
        default_factory=list, compare=False, repr=False
    )

    @classmethod
    def build(cls, column: pl.Series, enum: pl.Enum) -> _CodedList:
        long = pl.DataFrame({"l": column}).with_row_index(_ROW).explode("l").drop_nulls("l")
        rows = long[_ROW].to_numpy()
        codes = long["l"].cast(enum).to_physical().cast(pl.UInt32).to_numpy()
        offsets = np.searchsorted(rows, np.arange(len(column) + 1)).astype(np.int64)
        return cls(offsets, codes, np.diff(offsets))

    def lengths(self, rows: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
        lengths: npt.NDArray[np.int64] = self.sizes[rows]
        return lengths

    def _expand(self, rows: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
        """(i, element) for every element of list[rows[i]]."""
        held = self.last[0] if self.last else None  # read once: another thread may replace it
        if held is not None and held[0] is rows:
            return held[1]
        counts = self.lengths(rows)
        at = np.repeat(np.arange(len(rows)), counts)
        within = np.arange(len(at)) - np.repeat(np.cumsum(counts) - counts, counts)
        expanded = at, self.codes[self.offsets[rows][at] + within]
        self.last[:] = [(rows, expanded)]
        return expanded

    def contains(self, rows: npt.NDArray[Any], values: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
        """Whether list[rows[i]] holds values[i] (False where the value is null)."""
        at, elements = self._expand(rows)
        out = np.zeros(len(rows), dtype=bool)
        out[at[elements == values[at]]] = True
        return out

    def intersects(
        self, rows: npt.NDArray[Any], other: _CodedList, other_rows: npt.NDArray[Any]
    ) -> npt.NDArray[np.bool_]:
        """Whether list[rows[i]] and other[other_rows[i]] share an element."""
        at, elements = self._expand(rows)
        element_at, other_elements = other._expand(other_rows[at])
        out = np.zeros(len(rows), dtype=bool)
        out[at[element_at[other_elements == elements[element_at]]]] = True
        return out


@dataclass(frozen=True)
class _Side:
    """One frame's comparison columns: scalars as numpy arrays of codes into the shared dictionary (or of
    dates and date parts), null as the dtype's `_SENTINELS` value, so a gather per pair is a numpy gather;
    lists as `_CodedList`."""

    scalars: dict[str, npt.NDArray[Any]]
    lists: dict[str, _CodedList]


@dataclass(frozen=True)
class _Coded:
    """Both frames' comparison columns as codes into `values`, plus each code's length in characters."""

    query: _Side
    reference: _Side
    values: pl.Series
    lengths: npt.NDArray[np.int64]


def _with_given_key(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(*_CODED, *_CODED_LISTS, *_PLAIN, given_key=pl.col("given_tokens").list.join(""))


def _encode(query: pl.DataFrame, reference: pl.DataFrame) -> _Coded:
    # One frame on both sides (the same-child checks) is encoded once.
    sides = (
        [_with_given_key(query)]
        if query is reference
        else [_with_given_key(query), _with_given_key(reference)]
    )
    strings = [side[c].drop_nulls().unique() for side in sides for c in (*_CODED, "given_key")]
    strings += [side[c].explode().drop_nulls().unique() for side in sides for c in _CODED_LISTS]
    values = pl.concat(strings).unique().sort()
    enum = pl.Enum(values)
    coded = [
        _Side(
            {
                c: _numpy(column)
                for c, column in side.select(
                    *(pl.col(c).cast(enum).to_physical().cast(pl.UInt32) for c in (*_CODED, "given_key")),
                    *_PLAIN,
                )
                .to_dict()
                .items()
            },
            {c: _CodedList.build(side[c], enum) for c in _CODED_LISTS},
        )
        for side in sides
    ]
    lengths = values.str.len_chars().cast(pl.Int64).to_numpy()
    return _Coded(coded[0], coded[-1], values, lengths)


# Encodings of the frame pairs currently alive, by identity: `link` compares the same two frames in many
# slices, and encoding them once per pair rather than once per slice is most of the saving. An entry goes
# when either frame is garbage-collected.
_ENCODED: dict[tuple[int, int], tuple[weakref.ref[pl.DataFrame], weakref.ref[pl.DataFrame], _Coded]] = {}


def _coded(query: pl.DataFrame, reference: pl.DataFrame) -> _Coded:
    key = (id(query), id(reference))
    held = _ENCODED.get(key)
    if held is not None and held[0]() is query and held[1]() is reference:
        return held[2]
    coded = _encode(query, reference)

    def forget(_: object) -> None:
        _ENCODED.pop(key, None)

    _ENCODED[key] = (weakref.ref(query, forget), weakref.ref(reference, forget), coded)
    return coded


# Physical dtype of a compared column -> the value standing for null in its numpy array (never a real one:
# codes stop well short of 2**32 - 1, dates and date parts are far from their type's minimum).
_SENTINELS: dict[pl.DataType, int] = {
    pl.UInt32(): int(_NULL_CODE),
    pl.Date(): -(2**31),
    pl.Int32(): -(2**31),
    pl.Int8(): -(2**7),
}


def _numpy(column: pl.Series) -> npt.NDArray[Any]:
    return column.to_physical().fill_null(_SENTINELS[column.dtype]).to_numpy()


def _pairs_frame(
    q: dict[str, npt.NDArray[Any]], r: dict[str, npt.NDArray[Any]], dtypes: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """Both sides' gathered columns, prefixed q_ and r_, with nulls and logical dtypes (dates) restored."""
    gathered = {**{"q_" + c: v for c, v in q.items()}, **{"r_" + c: v for c, v in r.items()}}
    restored = []
    for name in gathered:
        dtype = dtypes.get(name[2:], pl.UInt32())
        sentinel = _SENTINELS[dtype]
        restored.append(pl.when(pl.col(name) != sentinel).then(pl.col(name)).cast(dtype).alias(name))
    return pl.DataFrame(gathered).select(restored)


def _similarities(
    coded: _Coded,
    left: npt.NDArray[np.uint32],
    right: npt.NDArray[np.uint32],
    scorers: dict[str, _Scorer],
    prefix: str | None = None,
    read: npt.NDArray[np.bool_] | None = None,
) -> list[pl.Series]:
    """Several rapidfuzz scorers over one pair of coded string columns, each named by its output column.

    Each distinct pair of differing strings is scored once (vectorised, all cores); equal and null pairs
    are filled in directly. With `prefix`, also whether one string starts the other (see `_prefix`). With
    `read`, differing pairs outside it are left at the "unknown" value unscored: no level reads them.
    """
    a, b = left, right
    known = (a != _NULL_CODE) & (b != _NULL_CODE)
    same = known & (a == b)
    need = np.flatnonzero(known & (a != b) & (True if read is None else read))
    pair_keys = (a[need].astype(np.uint64) << np.uint64(32)) | b[need].astype(np.uint64)
    distinct, inverse = _distinct(pair_keys)
    queries = coded.values.gather(distinct >> np.uint64(32))
    choices = coded.values.gather(distinct & np.uint64(0xFFFFFFFF))
    query_list, choice_list = queries.to_list(), choices.to_list()
    results = []
    for name, (scorer, equal, unknown, scale) in scorers.items():
        out = np.full(len(a), unknown, dtype=np.float32)
        out[same] = equal
        if len(need):
            scored = (
                process.cpdist(query_list, choice_list, scorer=scorer, workers=-1, dtype=np.float32) / scale
            )
            out[need] = scored[inverse]
        results.append(pl.Series(name, out))
    if prefix is not None:
        out_prefix = np.zeros(len(a), dtype=bool)
        out_prefix[same] = coded.lengths[a[same]] >= 3
        if len(need):
            out_prefix[need] = _prefix(queries, choices).to_numpy()[inverse]
        results.append(pl.Series(prefix, out_prefix))
    return results


def _distinct(keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]:
    """`np.unique(keys, return_inverse=True)`, by a polars dense rank (a parallel sort, several times
    faster than numpy's on millions of keys)."""
    if not len(keys):
        return keys, np.zeros(0, dtype=np.int64)
    inverse = (pl.Series(keys).rank("dense") - 1).cast(pl.Int64).to_numpy()
    distinct = np.empty(int(inverse.max()) + 1, dtype=np.uint64)
    distinct[inverse] = keys
    return distinct, inverse


# (scorer, value when equal, value when either is null, divisor)
_Scorer = tuple[Callable[..., float], float, float, float]
_JW: _Scorer = (JaroWinkler.normalized_similarity, 1.0, 0.0, 1.0)
# Optimal-string-alignment distance: one typo or one transposition is 1.
_OSA: _Scorer = (OSA.distance, 0.0, 99.0, 1.0)
_TOKEN_SET: _Scorer = (fuzz.token_set_ratio, 1.0, 0.0, 100.0)


def _one_typo(distance: str, length: str) -> pl.Expr:
    """At most one edit (a slip, a transposition), on a name of at least three letters."""
    return (pl.col(distance) <= 1) & (pl.col(length) >= 3)


def _prefix(left: pl.Series, right: pl.Series) -> pl.Series:
    """A name cut short (Gwil, Cat, Dafy): one is a prefix of the other, at least three letters long."""
    a, b = pl.col("a"), pl.col("b")
    shorter_ok = pl.min_horizontal(a.str.len_chars(), b.str.len_chars()) >= 3
    prefixed = pl.DataFrame({"a": left, "b": right}).select(
        (shorter_ok & (a.str.starts_with(b) | b.str.starts_with(a))).fill_null(False)
    )
    return prefixed.to_series()


def _street_read(
    q: Mapping[str, npt.NDArray[Any]], r: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.bool_]:
    """Pairs whose address level can depend on the street (see the address levels): house numbers agree;
    or a house number is missing and the postcodes agree, or no number on either side, or a postcode
    missing."""
    q_house, r_house = q["house_no"], r["house_no"]
    q_postcode, r_postcode = q["postcode"], r["postcode"]
    house_unknown = (q_house == _NULL_CODE) | (r_house == _NULL_CODE)
    postcode_missing = (q_postcode == _NULL_CODE) | (r_postcode == _NULL_CODE)
    no_numbers = (q_house == _NULL_CODE) & (r_house == _NULL_CODE)
    read: npt.NDArray[np.bool_] = (~house_unknown & (q_house == r_house)) | (
        house_unknown & ((q_postcode == r_postcode) | no_numbers | postcode_missing)
    )
    return read


def _dwelling_read(
    q: Mapping[str, npt.NDArray[Any]], r: Mapping[str, npt.NDArray[Any]]
) -> npt.NDArray[np.bool_]:
    """Pairs whose house numbers agree or are missing on both sides: the lines may name one dwelling."""
    q_house, r_house = q["house_no"], r["house_no"]
    read: npt.NDArray[np.bool_] = (q_house == r_house) | ((q_house == _NULL_CODE) & (r_house == _NULL_CODE))
    return read


def _lengths(coded: _Coded, name: str, codes: npt.NDArray[np.uint32]) -> pl.Series:
    """Length in characters of each coded string (0 where null)."""
    return pl.Series(name, _code_lengths(coded, codes))


def _code_lengths(coded: _Coded, codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    known = codes != _NULL_CODE
    out = np.zeros(len(codes), dtype=np.int64)
    out[known] = coded.lengths[codes[known]]
    return out


def _typo_read(
    coded: _Coded, left: npt.NDArray[np.uint32], right: npt.NDArray[np.uint32]
) -> npt.NDArray[np.bool_]:
    """Pairs whose OSA distance `_one_typo` can read as one slip: the left name has three letters or more
    and the lengths differ by at most one (the distance is at least the difference in length)."""
    left_len, right_len = _code_lengths(coded, left), _code_lengths(coded, right)
    read: npt.NDArray[np.bool_] = (left_len >= 3) & (np.abs(left_len - right_len) <= 1)
    return read


def _levels(conditions: list[tuple[pl.Expr, str]], field: str, missing: pl.Expr) -> pl.Expr:
    """First true condition wins (conditions are listed best first); missing beats everything."""
    chain: Any = pl.when(missing).then(pl.lit(0, pl.Int8))
    for condition, level in conditions:
        chain = chain.when(condition).then(pl.lit(level_code(field, level), pl.Int8))
    worst = FIELD_LEVELS[field][-1]
    result: pl.Expr = chain.otherwise(pl.lit(level_code(field, worst), pl.Int8)).alias(field)
    return result


def _eq(a: str, b: str) -> pl.Expr:
    return (pl.col(a) == pl.col(b)).fill_null(False)


def _any_group_shared() -> pl.Expr:
    left = ("q_given_c1", "q_given_c2", "q_pref_c1", "q_pref_c2")
    right = ("r_given_c1", "r_given_c2", "r_pref_c1", "r_pref_c2")
    return pl.any_horizontal([_eq(a, b) for a in left for b in right])


def compare(
    query: pl.DataFrame,
    reference: pl.DataFrame,
    rows: npt.NDArray[Any],
    ref_rows: npt.NDArray[Any],
    values: bool = True,
) -> pl.DataFrame:
    """Comparison levels for pairs (query[rows[i]], reference[ref_rows[i]]).

    With `values` (the default) also the strings term frequencies are looked up by (tf_given_value,
    tf_family_value, tf_postcode_value, null where the names were swapped) and the reference's given
    name (given_other); a caller with the frequencies per query row can leave them out.
    """
    query_rows, reference_rows = pl.Series(rows, dtype=pl.UInt32), pl.Series(ref_rows, dtype=pl.UInt32)
    if len(rows) * _FEW_PAIRS < query.height + reference.height:
        # A few pairs (the same-child checks): encoding just the records they touch is cheaper.
        columns = [*_CODED, *_CODED_LISTS, *_PLAIN, "given_tokens"]
        if query is reference:
            at, positions = np.unique(np.concatenate([rows, ref_rows]), return_inverse=True)
            query_pos, reference_pos = positions[: len(rows)], positions[len(rows) :]
            records = query.select(columns)[at]
            coded = _encode(records, records)
        else:
            query_at, query_pos = np.unique(rows, return_inverse=True)
            reference_at, reference_pos = np.unique(ref_rows, return_inverse=True)
            coded = _encode(query.select(columns)[query_at], reference.select(columns)[reference_at])
    else:
        coded = _coded(query, reference)
        query_pos, reference_pos = rows, ref_rows
    q = {c: values[query_pos] for c, values in coded.query.scalars.items()}
    r = {c: values[reference_pos] for c, values in coded.reference.scalars.items()}
    q_lists, r_lists = coded.query.lists, coded.reference.lists
    given_pref = {"jw_given_pref": _JW, "osa_given_pref": _OSA}
    pairs = _pairs_frame(q, r, {c: query.schema[c] for c in _PLAIN})
    pairs = pairs.with_columns(
        *_similarities(coded, q["given1"], r["given1"], {"jw_given": _JW, "osa_given": _OSA}, "prefix_given"),
        *_similarities(coded, q["given1"], r["pref_given1"], given_pref, "prefix_given_pref"),
        *_similarities(coded, q["family"], r["family"], {"jw_family": _JW, "osa_family": _OSA}),
        *_similarities(coded, q["family"], r["pref_family"], {"jw_family_pref": _JW}),
        # Only read by `_one_typo`: pairs it cannot accept are left unscored (99, more than one edit).
        *_similarities(
            coded,
            q["given1"],
            r["family"],
            {"osa_swap_given": _OSA},
            read=_typo_read(coded, q["given1"], r["family"]),
        ),
        *_similarities(
            coded,
            q["family"],
            r["given1"],
            {"osa_swap_family": _OSA},
            read=_typo_read(coded, q["family"], r["given1"]),
        ),
        *_similarities(coded, q["street"], r["street"], {"sim_street": _TOKEN_SET}, read=_street_read(q, r)),
        # Only read where the lines name the same dwelling and both postcodes are known (see the address
        # levels): is the other postcode one slip away?
        *_similarities(
            coded, q["postcode"], r["postcode"], {"osa_postcode": _OSA}, read=_dwelling_read(q, r)
        ),
        _lengths(coded, "q_given1_len", q["given1"]),
        _lengths(coded, "q_family_len", q["family"]),
        # List comparisons, answered from the frames' (row, element) sets rather than lists gathered per pair.
        pl.Series(
            "given_moved",
            r_lists["given_alt"].contains(reference_pos, q["given1"])
            | q_lists["given_alt"].contains(query_pos, r["given1"])
            | q_lists["given_alt"].contains(query_pos, r["pref_given1"]),
        ),
        pl.Series(
            "family_partial",
            q_lists["family_tokens"].intersects(query_pos, r_lists["family_tokens"], reference_pos),
        ),
        pl.Series(
            "family_former",
            r_lists["former_family"].contains(reference_pos, q["family"])
            | q_lists["former_family"].contains(query_pos, r["family"])
            | q_lists["former_family"].contains(query_pos, r["pref_family"]),
        ),
        pl.Series(
            "middle_agree", q_lists["given_alt"].intersects(query_pos, r_lists["given_alt"], reference_pos)
        ),
        pl.Series("q_no_alt", q_lists["given_alt"].lengths(query_pos) == 0),
        pl.Series("r_no_alt", r_lists["given_alt"].lengths(reference_pos) == 0),
        pl.Series("given_in_family", r_lists["family_tokens"].contains(reference_pos, q["given1"])),
        pl.Series("family_has_given", q_lists["family_tokens"].contains(query_pos, r["given1"])),
    )
    if values:
        # The values term frequencies are looked up by, as strings.
        pairs = pairs.with_columns(
            query["given1"].gather(query_rows).alias("tf_given_value"),
            reference["given1"].gather(reference_rows).alias("given_other"),
            query["family"].gather(query_rows).alias("tf_family_value"),
            query["postcode"].gather(query_rows).alias("tf_postcode_value"),
        )
    levelled = pairs.select(_field_levels(values))
    return levelled.with_columns(_swap_resolution(values)).drop(
        "swap", "swap_given_exact", "swap_family_exact"
    )


@cache
def _field_levels(values: bool = True) -> list[pl.Expr]:
    """The level expressions of every field, built once (rebuilding them per call costs a real-time query
    more than evaluating them)."""
    given_sim = pl.max_horizontal("jw_given", "jw_given_pref")
    family_sim = pl.max_horizontal("jw_family", "jw_family_pref")
    given = _levels(
        [
            (_eq("q_given1", "r_given1") | _eq("q_given1", "r_pref_given1") | _eq("q_given_key", "r_given_key"),
             "exact"),
            (_any_group_shared(), "equivalent"),
            (pl.col("given_moved"), "alternative"),
            (_one_typo("osa_given", "q_given1_len") | _one_typo("osa_given_pref", "q_given1_len")
             | pl.col("prefix_given") | pl.col("prefix_given_pref"), "fuzzy_high"),
            ((given_sim >= FUZZY_LOW) | _eq("q_given_ph", "r_given_ph"), "fuzzy_low"),
        ],
        "given",
        pl.col("q_given1").is_null() | (pl.col("r_given1").is_null() & pl.col("r_pref_given1").is_null()),
    )  # fmt: skip
    family = _levels(
        [
            (_eq("q_family", "r_family") | _eq("q_family", "r_pref_family"), "exact"),
            (pl.col("family_partial"), "partial"),
            (pl.col("family_former"), "former"),
            ((family_sim >= FUZZY_HIGH) | _one_typo("osa_family", "q_family_len"), "fuzzy_high"),
            ((family_sim >= FUZZY_LOW) | _eq("q_family_ph", "r_family_ph"), "fuzzy_low"),
        ],
        "family",
        pl.col("q_family").is_null() | pl.col("r_family").is_null(),
    )  # fmt: skip
    same_parts = (
        _eq("q_dob_y", "r_dob_y").cast(pl.Int8) + _eq("q_dob_m", "r_dob_m").cast(pl.Int8)
        + _eq("q_dob_d", "r_dob_d").cast(pl.Int8)
    )  # fmt: skip
    dob = _levels(
        [
            (_eq("q_dob", "r_dob"), "exact"),
            (_eq("q_dob_y", "r_dob_y") & _eq("q_dob_d", "r_dob_m") & _eq("q_dob_m", "r_dob_d"), "transposed"),
            (((pl.col("q_dob") - pl.col("r_dob")).dt.total_days().abs() == 1).fill_null(False), "one_day"),
            (same_parts == 2, "two_of_three"),
        ],
        "dob",
        pl.col("q_dob").is_null() | pl.col("r_dob").is_null(),
    )
    house_same = _eq("q_house_no", "r_house_no")
    house_unknown = pl.col("q_house_no").is_null() | pl.col("r_house_no").is_null()
    no_numbers = pl.col("q_house_no").is_null() & pl.col("r_house_no").is_null()
    street_same = pl.col("sim_street") >= STREET_SIMILAR
    postcode_same = _eq("q_postcode", "r_postcode")
    # The same dwelling by its lines: house number and street, or (no numbers on either side) the house
    # name and street, which the street key holds; and the postcodes, where both are known, no more than
    # one slip apart. Number and street names repeat from town to town (1 Valley Street, Tonypandy and
    # 1 Valley Close, Harlech): with two unrelated postcodes the lines agreeing is a coincidence.
    postcode_slip = pl.col("osa_postcode") <= 1
    dwelling_same = street_same & (house_same | no_numbers)
    dwelling_same = dwelling_same & (
        pl.col("q_postcode").is_null() | pl.col("r_postcode").is_null() | postcode_slip
    )
    # Lines that say "another dwelling": another street, or another number in it.
    lines_differ = (
        pl.col("q_street").is_not_null()
        & pl.col("r_street").is_not_null()
        & (~street_same | (~house_unknown & ~house_same))
    )
    # Without a postcode on one side, the postcode levels cannot be judged: a postcode missing is not a
    # postcode that differs. The lines alone then decide (same dwelling, another dwelling, or unknown).
    postcode_missing = pl.col("q_postcode").is_null() | pl.col("r_postcode").is_null()
    address = _levels(
        [
            (postcode_same & (house_same | (house_unknown & street_same)), "postcode_and_house"),
            (postcode_same, "postcode"),
            (dwelling_same, "house_and_street"),
            (_eq("q_pc_sector", "r_pc_sector"), "sector"),
            (_eq("q_pc_district", "r_pc_district"), "district"),
            (_eq("q_pc_area", "r_pc_area"), "area"),
        ],
        "address",
        (pl.col("q_postcode").is_null() & pl.col("q_street").is_null())
        | (pl.col("r_postcode").is_null() & pl.col("r_street").is_null())
        | (postcode_missing & ~dwelling_same & ~lines_differ),
    )
    # Middle names: agree or disagree when both sides have given-type names beyond the first; "one_sided"
    # when only one side has any (a list that drops them, or another child); missing when neither has.
    # A middle name that moved into the given-name slot on one side explains the other side's lack of one.
    middle = _levels(
        [(pl.col("middle_agree"), "agree"), (~pl.col("q_no_alt") & ~pl.col("r_no_alt"), "disagree")],
        "middle",
        pl.col("q_no_alt") | pl.col("given_moved") & pl.col("r_no_alt"),
    )
    sex = _levels(
        [(_eq("q_sex", "r_sex"), "agree")],
        "sex",
        pl.col("q_sex").is_null() | pl.col("r_sex").is_null(),
    )
    nhs = _levels(
        [(_eq("q_nhs", "r_nhs"), "agree")],
        "nhs",
        pl.col("q_nhs").is_null() | pl.col("r_nhs").is_null(),
    )
    # Given and family written the other way round on one side: each name agrees with the other's
    # opposite part, exactly, as a token of it, or nearly.
    swap_given = (
        _eq("q_given1", "r_family") | pl.col("given_in_family") | _one_typo("osa_swap_given", "q_given1_len")
    )
    swap_family = (
        _eq("q_family", "r_given1") | pl.col("family_has_given")
        | _one_typo("osa_swap_family", "q_family_len")
    )  # fmt: skip
    return [
        given, family, dob, address, middle, sex, nhs,
        # The surnames' near agreement is one keying slip (see `score.SLIP_ONLY`).
        _one_typo("osa_family", "q_family_len").alias("family_slip"),
        _eq("q_given1", "r_given1").alias("given_registered_same"),
        (swap_given & swap_family).alias("swap"),
        (_eq("q_given1", "r_family") | pl.col("given_in_family")).alias("swap_given_exact"),
        (_eq("q_family", "r_given1") | pl.col("family_has_given")).alias("swap_family_exact"),
        *(pl.col(c) for c in _VALUE_COLUMNS if values),
    ]  # fmt: skip


@cache
def _swap_resolution(values: bool = True) -> list[pl.Expr]:
    """Names written the other way round replace the straight levels when they explain the pair better."""
    poor = level_code("given", "fuzzy_low")
    use_swap = pl.col("swap") & ((pl.col("given") >= poor) | (pl.col("family") >= poor))
    exact_g, fuzzy_g = level_code("given", "exact"), level_code("given", "fuzzy_high")
    exact_f, fuzzy_f = level_code("family", "exact"), level_code("family", "fuzzy_high")
    return [
        pl.when(use_swap)
        .then(pl.when("swap_given_exact").then(pl.lit(exact_g, pl.Int8)).otherwise(pl.lit(fuzzy_g, pl.Int8)))
        .otherwise("given")
        .alias("given"),
        pl.when(use_swap)
        .then(pl.when("swap_family_exact").then(pl.lit(exact_f, pl.Int8)).otherwise(pl.lit(fuzzy_f, pl.Int8)))
        .otherwise("family")
        .alias("family"),
        use_swap.alias("names_swapped"),
        *(
            pl.when(use_swap).then(None).otherwise(c).alias(c)
            for c in ("tf_given_value", "tf_family_value")
            if values
        ),
    ]
