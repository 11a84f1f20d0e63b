"""Canonical matching frames: one row per child record, normalised columns, ready for blocking.

Two entry points build the same frame:
- `records_to_frame` from submission-shaped dicts (as `app.submissions.schemas` records dump them);
- `columns_to_frame` from flat raw columns (`RAW_COLUMNS`), which is what stored rows load as.
Scalar cleaning (`app.matching.normalise`) runs once per distinct value, never per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from app.core import identifiers
from app.matching import normalise
from app.matching.names import given_groups

# Raw column -> polars dtype. A stored row loads as these columns; `id` is the caller's row id.
RAW_COLUMNS: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "given_name": pl.String(),
    "middle_names": pl.String(),
    "family_name": pl.String(),
    "former_given_names": pl.List(pl.String()),
    "former_family_names": pl.List(pl.String()),
    "preferred_given_name": pl.String(),
    "preferred_family_name": pl.String(),
    "date_of_birth": pl.Date(),
    "address_lines": pl.List(pl.String()),
    "town": pl.String(),
    "postcode": pl.String(),
    "sex": pl.String(),
    "nhs_number": pl.String(),
    "register": pl.String(),
    "la": pl.String(),
}

SEXES = frozenset({"F", "M"})


def sex_reading(value: Any) -> str | None:
    """The sex a record gives, as compared: F or M (an enum's value, case and spaces ignored), else None."""
    if value is None:
        return None
    sex = str(getattr(value, "value", value)).upper().strip()
    return sex if sex in SEXES else None


# --- What each canonical column is made of ---------------------------------------------------------------
# Read by `canonicalise` (a column at a time) and by `single.canonical_record` (one record), each with its
# own few primitives (split, first, slice, concatenate), so the two cannot disagree on a derivation.

# Name fields folded (`normalise.person_name`) and kept as tokens, at most `MAX_NAME_TOKENS`.
TOKENS = {
    "given_tokens": "given_name",
    "middle_tokens": "middle_names",
    "family_tokens": "family_name",
    "pref_tokens": "preferred_given_name",
}
# Surnames folded and compacted (spaces removed): compared whole.
COMPACT = {"family": "family_name", "pref_family": "preferred_family_name"}
# The first token of a token column.
FIRSTS = {"given1": "given_tokens", "pref_given1": "pref_tokens", "middle1": "middle_tokens"}
# `given_alt`, every given-type token other than the first: middle names, second given names, the rest of a
# preferred name (a name moved between "given" and "middle" is found here). Token column, first index kept.
GIVEN_ALT = (("given_tokens", 1), ("middle_tokens", 0), ("pref_tokens", 1))
DATE_PARTS = {"dob_y": "year", "dob_m": "month", "dob_d": "day"}
POSTCODE_PARTS = ("pc_sector", "pc_district", "pc_area")  # `identifiers.postcode_parts`, in its order
# Given-name identity groups (`names.given_groups`): <prefix>_c1 and <prefix>_c2 of a first token.
GROUPED = {"given": "given1", "pref": "pref_given1"}
GROUP_KEYS = tuple(f"{prefix}_c{i}" for prefix in GROUPED for i in (1, 2))
# Blocking name keys: the metaphone of every token of these parts, and "=" + each identity group. Keeping
# all parts (given, middle, preferred, former, family) is what lets blocking survive swapped names, a
# dropped half of a double-barrelled surname, a changed surname and a middle name moved.
NAME_KEY_PARTS = (
    "given_tokens", "middle_tokens", "pref_tokens", "former_given", "family_tokens", "former_family", "family",
)  # fmt: skip
PHONETIC = {"given_ph": "given1", "family_ph": "family"}


_NAME_FIELDS = (
    "given_name",
    "middle_names",
    "family_name",
    "preferred_given_name",
    "preferred_family_name",
    "nhs_number",
)


def _joined(former: Sequence[Mapping[str, Any]], part: str) -> str:
    return "\n".join([name.get(part) or "" for name in former])


def records_to_frame(
    records: Sequence[Mapping[str, Any]],
    ids: Sequence[int],
    *,
    registers: Sequence[str | None] | None = None,
    las: Sequence[str | None] | None = None,
) -> pl.DataFrame:
    """Submission-shaped records (health or education) with their row ids -> canonical frame.

    `registers` names the list each record came from and `las` the local authority holding it. For a
    health frame pass the sender and snapshot (e.g. "W91761@2025-04-30"): two health rows from one list
    are never taken for the same child, which is what keeps twins with equivalent names (Ioan, Iwan)
    apart. For education frames it is carried through for the caller only.
    """
    if len(ids) != len(records):
        raise ValueError("ids and records differ in length")
    count = len(records)
    # Column by column with comprehensions, and dates and sexes converted once per distinct value: this
    # loop over records is the one per-record Python step. No container is allocated per record (no
    # `or {}`, no generator per record): with millions of live records, allocations are what set off the
    # cyclic garbage collector's full passes.
    columns: dict[str, list[Any]] = {name: [record.get(name) for record in records] for name in _NAME_FIELDS}
    addresses = [record.get("address") for record in records]
    formers = [record.get("former_names") for record in records]
    # Multi-valued items travel as one newline-joined string (building nested Series is slow) and are
    # split again by polars.
    columns["former_given_names"] = [_joined(former, "given_name") if former else "" for former in formers]
    columns["former_family_names"] = [_joined(former, "family_name") if former else "" for former in formers]
    columns["address_lines"] = [
        "\n".join(address.get("lines") or ()) if address else "" for address in addresses
    ]
    columns["town"] = [address.get("town") if address else None for address in addresses]
    columns["postcode"] = [address.get("postcode") if address else None for address in addresses]
    dates = [record.get("date_of_birth") for record in records]
    as_date = {value: normalise.as_date(value) for value in set(dates)}
    columns["date_of_birth"] = [as_date[value] for value in dates]
    sexes = [record.get("sex") for record in records]
    as_sex = {
        value: str(getattr(value, "value", value)) if value is not None else None for value in set(sexes)
    }
    columns["sex"] = [as_sex[value] for value in sexes]
    columns["id"] = list(ids)
    columns["register"] = list(registers) if registers is not None else [None] * count
    columns["la"] = list(las) if las is not None else [None] * count
    joined = {"former_given_names", "former_family_names", "address_lines"}
    split = {
        name: pl.Series(name, columns[name], dtype=pl.String())
        .str.split("\n")
        .list.eval(pl.element().filter(pl.element() != ""))
        for name in joined
    }
    return columns_to_frame({**{k: v for k, v in columns.items() if k not in joined}, **split})


def columns_to_frame(columns: Mapping[str, Sequence[Any] | pl.Series]) -> pl.DataFrame:
    """Flat raw columns (names from `RAW_COLUMNS`; absent ones are null) -> canonical frame."""
    unknown = set(columns) - set(RAW_COLUMNS)
    if unknown:
        raise ValueError(f"unknown raw columns: {sorted(unknown)}")
    if "id" not in columns:
        raise ValueError("an id column is required")
    height = len(columns["id"])
    raw = pl.DataFrame(
        {
            name: _raw_series(name, columns[name], dtype)
            if name in columns
            else pl.Series(name, [None] * height, dtype=dtype)
            for name, dtype in RAW_COLUMNS.items()
        }
    )
    return canonicalise(raw)


_FORMER_NAME = pl.List(pl.Struct({"given_name": pl.String(), "family_name": pl.String()}))


def text_columns(table: pl.DataFrame, *, la_column: str) -> dict[str, pl.Series]:
    """Stored child rows read as text (`app.core.bulk.read_text`) -> the raw columns of `columns_to_frame`.

    Decoded in polars, column by column: the same frame as from row objects (tested), without a Python
    object per value.
    """
    former = table["former_names"].str.json_decode(_FORMER_NAME)

    def former_parts(part: str) -> pl.Series:
        # Each record's non-empty parts, in order (as `former_name_columns`).
        value = pl.element().struct.field(part)
        return former.list.eval(value.filter(value.fill_null("") != "")).alias(f"former_{part}s")

    columns: dict[str, pl.Series] = {
        "id": table["id"].cast(pl.Int64),
        "former_given_names": former_parts("given_name"),
        "former_family_names": former_parts("family_name"),
        "date_of_birth": table["date_of_birth"].str.to_date(),
        "address_lines": table["address_lines"].str.json_decode(pl.List(pl.String())),
        "la": table[la_column],
    }
    for name in ("given_name", "middle_names", "family_name", "town", "postcode", *_OPTIONAL_TEXT):
        if name in table.columns:
            columns[name] = table[name]
    return columns


_OPTIONAL_TEXT = ("register", "nhs_number", "preferred_given_name", "preferred_family_name", "sex")


def _raw_series(name: str, values: Sequence[Any] | pl.Series, dtype: pl.DataType) -> pl.Series:
    if not isinstance(dtype, pl.List) or isinstance(values, pl.Series):
        return pl.Series(name, values, dtype=dtype, strict=False)
    # A Python sequence of lists: polars would build one Series per record. Instead, every element in
    # one flat Series (converted as the per-record Series would be) cut back into records by row number.
    try:
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    except TypeError:  # a null list
        lengths = np.array([-1 if v is None else len(v) for v in values], dtype=np.int64)
    flat = pl.Series(
        _VALUE, list(itertools.chain.from_iterable(filter(None, values))), dtype=dtype.inner, strict=False
    )
    rows = np.repeat(np.arange(len(values), dtype=np.uint32), np.maximum(lengths, 0))
    lists = _lists(len(values), pl.DataFrame({_ROW: rows, _VALUE: flat}))
    return lists.set(pl.Series(lengths < 0), None).alias(name)


def former_name_columns(
    former_names: Sequence[Sequence[Mapping[str, Any]] | None],
) -> tuple[pl.Series, pl.Series]:
    """Stored `former_names` (per record a list of {"given_name", "family_name"} or None) -> the raw
    `former_given_names` and `former_family_names` columns: each record's non-empty parts, in order.

    For callers holding stored rows: it reads every former name once, with no list built per record (with
    hundreds of thousands of rows alive, per-record allocations are what set off full garbage collections).
    """
    height = len(former_names)
    lengths = np.array([len(names) if names else 0 for names in former_names], dtype=np.int64)
    flat = list(itertools.chain.from_iterable(filter(None, former_names)))
    rows = pl.Series(_ROW, np.repeat(np.arange(height, dtype=np.uint32), lengths))
    columns = []
    for part in ("given_name", "family_name"):
        values = pl.Series(_VALUE, [name.get(part) or None for name in flat], dtype=pl.String(), strict=False)
        long = pl.DataFrame([rows, values]).drop_nulls(_VALUE)
        columns.append(_lists(height, long).alias(f"former_{part}s"))
    return columns[0], columns[1]


def _codes(series: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(distinct non-null values in sorted order, each row's position among them; null for null)."""
    distinct = series.drop_nulls().unique().sort()
    # An Enum over the distinct values codes every row in one hash pass; its physical codes are the
    # positions, and a gather maps them back (much cheaper than `replace_strict` on strings).
    return distinct, series.cast(pl.Enum(distinct)).to_physical()


def _map_unique(series: pl.Series, fn: Callable[[Any], Any], dtype: pl.DataType) -> pl.Series:
    """Apply a scalar cleaner once per distinct non-null value."""
    distinct, codes = _codes(series)
    cleaned = pl.Series(series.name, [fn(v) for v in distinct.to_list()], dtype=dtype)
    return cleaned.gather(codes)


def _map_elements(series: pl.Series, fn: Callable[[str], str | None]) -> pl.Series:
    """A string cleaner on every element of a list-of-strings column, once per distinct element; elements
    it maps to None are dropped, order and repeats kept; a null or empty list gives []."""
    long = _long(pl.DataFrame({_VALUE: series}), _VALUE)
    mapped = long.with_columns(_map_unique(long[_VALUE], fn, pl.String())).drop_nulls(_VALUE)
    return _lists(series.len(), mapped).alias(series.name)


def _first_token(value: str) -> str | None:
    found = normalise.tokens(value)
    return found[0] if found else None


# Tokens of one name field kept for matching. Names of real children have a few (a double-barrelled
# surname, two or three middle names); a list may send 60 one-letter tokens in a 120-character field, and
# every list comparison of a pair costs the product of the two records' token counts (decision 0018,
# "Bounded work per list row"). Tokens past the cap are not compared and give no blocking key.
MAX_NAME_TOKENS = 4


def _split(folded: pl.Series) -> pl.Series:
    return folded.str.split(" ").list.head(MAX_NAME_TOKENS).fill_null([])


def canonicalise(raw: pl.DataFrame) -> pl.DataFrame:
    """Raw columns -> the canonical matching columns (see docs/decisions/0002-matching.md)."""
    s = pl.String()
    folded = {
        name: _map_unique(raw[name], normalise.person_name, s)
        for name in (*TOKENS.values(), *COMPACT.values())
    }
    address_text = raw["address_lines"].list.join("\n")
    postcode = _map_unique(raw["postcode"], identifiers.normalise_postcode, s)
    frame = pl.DataFrame(
        {
            "id": raw["id"],
            "register": raw["register"],
            "la": raw["la"],
            **{column: _split(folded[name]) for column, name in TOKENS.items()},
            "former_given": _map_elements(raw["former_given_names"], _first_token),
            "former_family": _map_elements(raw["former_family_names"], normalise.compact),
            **{
                column: folded[name].str.replace_all(" ", "", literal=True)
                for column, name in COMPACT.items()
            },
            "dob": raw["date_of_birth"],
            "postcode": postcode,
            "house_no": _map_unique(address_text, normalise.house_number_in_text, s),
            "street": _street_keys(raw["address_lines"]),
            "sex": _map_unique(raw["sex"], sex_reading, s),
            "nhs": _map_unique(raw["nhs_number"], identifiers.nhs_digits, s),
        }
    )
    frame = frame.with_columns(
        *(pl.col(tokens).list.first().alias(column) for column, tokens in FIRSTS.items()),
        given_alt=pl.concat_list(pl.col(tokens).list.slice(start) for tokens, start in GIVEN_ALT),
        **{
            column: getattr(pl.col("dob").dt, part)().cast(_DATE_DTYPES[part])
            for column, part in DATE_PARTS.items()
        },
    )
    distinct, codes = _codes(frame["postcode"])
    parts = [identifiers.postcode_parts(postcode) for postcode in distinct.to_list()]
    frame = frame.with_columns(
        pl.Series(column, [part[i] for part in parts], dtype=s).gather(codes)
        for i, column in enumerate(POSTCODE_PARTS)
    )
    groups = {}
    for prefix, column in GROUPED.items():
        distinct, codes = _codes(frame[column])
        found = [given_groups(name) for name in distinct.to_list()]
        for i in (0, 1):
            groups[f"{prefix}_c{i + 1}"] = pl.Series([g[i] for g in found], dtype=s).gather(codes)
    frame = frame.with_columns(**groups)
    return frame.with_columns(
        name_keys=_name_keys(frame),
        **{column: _map_unique(frame[name], normalise.phonetic, s) for column, name in PHONETIC.items()},
    )


_DATE_DTYPES: dict[str, pl.DataType] = {"year": pl.Int32(), "month": pl.Int8(), "day": pl.Int8()}


def _long(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """(row, value) for every value of a column, a list column's elements one per row; nulls kept."""
    long = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW), pl.col(column).alias(_VALUE))
    return long.explode(_VALUE) if isinstance(long.schema[_VALUE], pl.List) else long


def _lists(height: int, long: pl.DataFrame) -> pl.Series:
    """Each of `height` records' values, in the order given, from (row, value) pairs sorted by row; [] if
    none. The rows MUST be sorted: they are flagged so, which lets the group-by cut slices."""
    found = long.with_columns(pl.col(_ROW).set_sorted()).group_by(_ROW, maintain_order=True).agg(_VALUE)
    rows = pl.DataFrame({_ROW: pl.int_range(height, dtype=pl.UInt32, eager=True)})
    return rows.join(found, on=_ROW, how="left", maintain_order="left")[_VALUE].fill_null([])


def _per_record(height: int, long: pl.DataFrame) -> pl.Series:
    """Distinct non-null values of each of `height` records from (row, value) pairs, sorted; [] if none."""
    long = long.drop_nulls(_VALUE)
    distinct, codes = _codes(long[_VALUE])
    # Each (row, value) as one 64-bit number, row high and the value's rank in sorted order low: one
    # integer sort (polars', multi-threaded) orders them all, and neighbours that are equal are repeats.
    key = long[_ROW].cast(pl.UInt64).to_numpy() << np.uint64(32) | codes.cast(pl.UInt64).to_numpy()
    pairs = pl.Series(key).sort().to_numpy()
    if len(pairs):
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    rows = (pairs >> np.uint64(32)).astype(np.uint32)
    values = distinct.gather((pairs & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    return _lists(height, pl.DataFrame({_ROW: rows, _VALUE: values}))


def _street_keys(address_lines: pl.Series) -> pl.Series:
    """`normalise.street_key` of each record's lines, computed once per distinct space-separated piece.

    The key is a set of words and folding never joins words across whitespace, so the union of the pieces'
    keys is the record's key; distinct pieces (house numbers, street and town words) are far fewer than
    distinct addresses.
    """
    frame = pl.DataFrame({"lines": address_lines})
    pieces = _long(frame, "lines").with_columns(pl.col(_VALUE).str.split(" ")).explode(_VALUE)
    keyed = _map_unique(pieces[_VALUE], lambda piece: normalise.street_key([piece]), pl.String())
    words = pieces.with_columns(keyed.str.split(" ").alias(_VALUE)).explode(_VALUE)
    return _per_record(frame.height, words).list.join(" ").replace("", None).alias("street")


def _name_keys(frame: pl.DataFrame) -> pl.Series:
    """Blocking keys from name parts (`NAME_KEY_PARTS`, `GROUP_KEYS`); metaphone runs once per distinct token."""
    tokens = pl.concat([_long(frame, part) for part in NAME_KEY_PARTS])
    phonetic = tokens.with_columns(_map_unique(tokens[_VALUE], normalise.phonetic, pl.String()))
    groups = pl.concat(
        [
            frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(_ROW), ("=" + pl.col(c)).alias(_VALUE))
            for c in GROUP_KEYS
        ]
    )
    return _per_record(frame.height, pl.concat([phonetic, groups]))


_ROW = "row"
_VALUE = "value"
