"""Field comparisons for candidate pairs: one comparison level per field, computed column-wise.

Input is two canonical frames and two equal-length arrays of row positions; output is one row per pair
with an Int8 level per field (codes from `app.matching.params.FIELD_LEVELS`, 0 = missing), whether the
names were matched the other way round, and the values needed for term-frequency adjustment. The rules
are `app.matching.rules`' (the one-record path reads the same ones): this module computes the measures
they read column-wise, string similarities once per distinct pair of strings with
`rapidfuzz.process.cpdist`, and evaluates the rules as polars expressions.
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

from app.matching import rules

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


def _with_derived(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        *_CODED, *_CODED_LISTS, *_PLAIN, *(build().alias(name) for name, (build, _) in rules.DERIVED.items())
    )


def _encode(query: pl.DataFrame, reference: pl.DataFrame) -> _Coded:
    # One frame on both sides (the same-child checks) is encoded once.
    sides = [_with_derived(query)] if query is reference else [_with_derived(query), _with_derived(reference)]
    strings = [side[c].drop_nulls().unique() for side in sides for c in (*_CODED, *rules.DERIVED)]
    strings += [side[c].explode().drop_nulls().unique() for side in sides for c in _CODED_LISTS]
    values = pl.concat(strings).unique().sort()
    enum = pl.Enum(values)
    coded = [
        _Side(
            {
                c: _numpy(column)
                for c, column in side.select(
                    *(pl.col(c).cast(enum).to_physical().cast(pl.UInt32) for c in (*_CODED, *rules.DERIVED)),
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


def _code_lengths(coded: _Coded, codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
    known = codes != _NULL_CODE
    out = np.zeros(len(codes), dtype=np.int64)
    out[known] = coded.lengths[codes[known]]
    return out


def _typo_read(
    coded: _Coded, left: npt.NDArray[np.uint32], right: npt.NDArray[np.uint32]
) -> npt.NDArray[np.bool_]:
    """Pairs whose OSA distance `rules.one_typo` can read as one slip: the left name has three letters or more
    and the lengths differ by at most one (the distance is at least the difference in length)."""
    left_len, right_len = _code_lengths(coded, left), _code_lengths(coded, right)
    read: npt.NDArray[np.bool_] = (left_len >= 3) & (np.abs(left_len - right_len) <= 1)
    return read


_Read = Callable[
    [_Coded, Mapping[str, npt.NDArray[Any]], Mapping[str, npt.NDArray[Any]]], npt.NDArray[np.bool_]
]
# Batch only, a saving: the pairs whose string measures of a (query column, reference column) some rule can
# read; the others are left unscored, at the measure's "unknown" value. Each hint holds for the rules as
# written in `rules.py` and for the measure kinds listed with it (checked below); the property test
# (tests/matching/test_rules.py) compares batch with the unhinted Python path on pairs made to sit on
# these edges.
_READ: dict[tuple[str, str], tuple[frozenset[str], _Read]] = {
    # Only `rules.one_typo` reads these (names written the other way round).
    ("given1", "family"): (frozenset({"osa"}), lambda c, q, r: _typo_read(c, q["given1"], r["family"])),
    ("family", "given1"): (frozenset({"osa"}), lambda c, q, r: _typo_read(c, q["family"], r["given1"])),
    ("street", "street"): (frozenset({"token_set"}), lambda c, q, r: _street_read(q, r)),
    # Only read where the lines name the same dwelling and both postcodes are known: one slip away?
    ("postcode", "postcode"): (frozenset({"osa"}), lambda c, q, r: _dwelling_read(q, r)),
}


def _check_read_hints(measures: Mapping[str, rules.Measure]) -> None:
    """A hint made for one measure must not silently cut another one added later on the same columns."""
    for m in measures.values():
        if m.b is not None and (m.a.name, m.b.name) in _READ:
            assert m.kind in _READ[(m.a.name, m.b.name)][0], f"{m.name}: update compare._READ"


def compare(
    query: pl.DataFrame,
    reference: pl.DataFrame,
    rows: npt.NDArray[Any],
    ref_rows: npt.NDArray[Any],
    values: bool = True,
) -> pl.DataFrame:
    """Comparison levels for pairs (query[rows[i]], reference[ref_rows[i]]), by the rules of `rules.py`.

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
    pairs = _pairs_frame(q, r, {c: query.schema[c] for c in _PLAIN})
    pairs = pairs.with_columns(_measures(coded, q, r, query_pos, reference_pos))
    if values:
        # The values term frequencies are looked up by, as strings.
        pairs = pairs.with_columns(
            query["given1"].gather(query_rows).alias("tf_given_value"),
            reference["given1"].gather(reference_rows).alias("given_other"),
            query["family"].gather(query_rows).alias("tf_family_value"),
            query["postcode"].gather(query_rows).alias("tf_postcode_value"),
        )
    levelled = pairs.select(_straight(values))
    return levelled.with_columns(_crosswise(values)).drop(*rules.SWAP_FACTS)


# (scorer, value when equal, value when either is null, divisor), per string measure of `rules.Measure`.
_Scorer = tuple[Callable[..., float], float, float, float]
_SCORERS: dict[str, _Scorer] = {
    "jaro_winkler": (JaroWinkler.normalized_similarity, 1.0, 0.0, 1.0),
    "osa": (OSA.distance, 0.0, 99.0, 1.0),
    "token_set": (fuzz.token_set_ratio, 1.0, 0.0, 100.0),
}
_MEASURES = rules.measures()
_check_read_hints(_MEASURES)


def _measures(
    coded: _Coded,
    q: Mapping[str, npt.NDArray[Any]],
    r: Mapping[str, npt.NDArray[Any]],
    query_pos: npt.NDArray[Any],
    reference_pos: npt.NDArray[Any],
) -> list[pl.Series]:
    """Every measure the rules read, one column each, named as the rules name it.

    String measures of one (query column, reference column) are computed together, once per distinct pair
    of differing strings; list measures straight from the frames' (row, element) sets rather than lists
    gathered per pair."""
    scalars = {"q": q, "r": r}
    lists = {"q": coded.query.lists, "r": coded.reference.lists}
    positions = {"q": query_pos, "r": reference_pos}
    out: list[pl.Series] = []
    strings: dict[tuple[str, str], list[rules.Measure]] = {}
    for name, m in _MEASURES.items():
        a, b = m.a, m.b
        if m.kind in _SCORERS or m.kind == "prefix":
            assert b is not None
            strings.setdefault((a.name, b.name), []).append(m)
        elif m.kind == "length":
            out.append(pl.Series(name, _code_lengths(coded, scalars[a.side][a.name])))
        elif m.kind == "contains":
            assert b is not None
            held = lists[a.side][a.name].contains(positions[a.side], scalars[b.side][b.name])
            out.append(pl.Series(name, held))
        elif m.kind == "overlaps":
            assert b is not None
            shared = lists[a.side][a.name].intersects(
                positions[a.side], lists[b.side][b.name], positions[b.side]
            )
            out.append(pl.Series(name, shared))
        elif m.kind == "empty":
            out.append(pl.Series(name, lists[a.side][a.name].lengths(positions[a.side]) == 0))
        else:
            raise ValueError(f"no batch form for measure {name}")
    for (left, right), group in strings.items():
        scorers = {m.name: _SCORERS[m.kind] for m in group if m.kind in _SCORERS}
        prefixed = next((m.name for m in group if m.kind == "prefix"), None)
        read = _READ.get((left, right))
        out += _similarities(
            coded, q[left], r[right], scorers, prefixed, None if read is None else read[1](coded, q, r)
        )
    return out


@cache
def _straight(values: bool = True) -> list[pl.Expr]:
    """Stage one of the rules as polars expressions, built once (rebuilding them per call costs a real-time
    query more than evaluating them)."""
    return [
        *(node.polars().alias(name) for name, node in rules.STRAIGHT.items()),
        *(pl.col(c) for c in _VALUE_COLUMNS if values),
    ]


@cache
def _crosswise(values: bool = True) -> list[pl.Expr]:
    """Stage two: names written the other way round (`rules.CROSSWISE`)."""
    swapped = rules.CROSSWISE["names_swapped"].polars()
    return [
        *(node.polars().alias(name) for name, node in rules.CROSSWISE.items()),
        *(pl.when(swapped).then(None).otherwise(c).alias(c) for c in rules.SWAP_CLEARS if values),
    ]
