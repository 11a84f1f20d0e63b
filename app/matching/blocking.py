"""Blocking: which pairs are worth comparing at all.

Several passes, each a key built on both sides, are unioned. Each pass is meant to survive a different
failure of the others (see docs/decisions/0002-matching.md): the query side (health) varies its date of
birth (exact, +-1 day, day/month swapped) and both sides offer every name part, so swapped, moved,
changed or half-missing names still share a key. A key shared by more than `max_block` reference records
is skipped in that pass: it identifies no one, and other passes still carry the true pair. A query row keeps
at most `MAX_PAIRS_PER_ROW` candidates, those the most passes found (decision 0018): a row offering dozens of
keys would otherwise collect every record sharing any one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

ROW = "row"
KEY = "key"
_SEED = 0x5EED
_ROWS = 1 << 32


@dataclass(frozen=True)
class Part:
    """Values a record offers for one key part: every non-null value of the expressions, lists exploded.

    `label` names the part's values so that passes sharing a part build its long form only once per frame.
    """

    label: str
    values: Callable[[], tuple[pl.Expr, ...]]

    def long(self, frame: pl.DataFrame) -> pl.DataFrame:
        """(row, value) for every value of every record, duplicates kept (they count towards `max_block`)."""
        pieces = []
        for expr in self.values():
            piece = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW), expr.alias(_VALUE))
            if isinstance(piece.schema[_VALUE], pl.List):
                piece = piece.explode(_VALUE)
            pieces.append(piece.drop_nulls(_VALUE))
        return pl.concat(pieces)


_VALUE = "value"


def _column(name: str) -> Part:
    return Part(name, lambda: (pl.col(name),))


def _transposed() -> pl.Expr:
    """Day and month swapped, only where that is a different valid date."""
    return pl.when((pl.col("dob_d") <= 12) & (pl.col("dob_d") != pl.col("dob_m"))).then(
        pl.date(pl.col("dob_y"), pl.col("dob_d"), pl.col("dob_m"))
    )


_ONE_DAY = pl.duration(days=1)
_DOB = _column("dob")
# Exact, the day either side, and day/month swapped.
_DOB_VARIANTS = Part(
    "dob_variants", lambda: (pl.col("dob"), pl.col("dob") + _ONE_DAY, pl.col("dob") - _ONE_DAY, _transposed())
)
_GIVEN_GROUPS = Part(
    "given_groups", lambda: tuple(pl.col(c) for c in ("given_c1", "given_c2", "pref_c1", "pref_c2"))
)
_FAMILY_KEYS = Part("family_keys", lambda: (pl.col("family"), pl.col("pref_family"), pl.col("former_family")))


def unplaced(expr: pl.Expr) -> pl.Expr:
    """`expr` only for a record with neither a birth date nor a postcode: every other pass needs one of
    them (or an NHS number), so such a record (an education row sent incomplete) is found by names alone."""
    return pl.when(pl.col("dob").is_null() & pl.col("postcode").is_null()).then(expr)


_UNPLACED_GIVEN_GROUPS = Part(
    "unplaced_given_groups",
    lambda: tuple(unplaced(pl.col(c)) for c in ("given_c1", "given_c2", "pref_c1", "pref_c2")),
)


class _LongParts:
    """One frame's parts in long form, each built on first use and shared by every pass that keys on it.

    Joined combinations of parts are shared too: the three name x date-part passes join given groups and
    surnames once.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self._frame = frame
        self._built: dict[str, pl.DataFrame] = {}
        self._joined: dict[tuple[tuple[str, str], ...], pl.DataFrame] = {}

    def get(self, part: Part) -> pl.DataFrame:
        if part.label not in self._built:
            self._built[part.label] = part.long(self._frame)
        return self._built[part.label]

    def _prefix(self, parts: tuple[tuple[str, Part], ...]) -> pl.DataFrame:
        """(row, one column per part) for every combination of the parts' values of each record; kept, as
        another pass may start with the same parts."""
        signature = tuple((name, part.label) for name, part in parts)
        if signature not in self._joined:
            self._joined[signature] = self._join(parts)
        return self._joined[signature]

    def _join(self, parts: tuple[tuple[str, Part], ...]) -> pl.DataFrame:
        *head, (name, part) = parts
        values = self.get(part).rename({_VALUE: name})
        return values if not head else self._prefix(tuple(head)).join(values, on=ROW, how="inner")

    def keyed(self, parts: dict[str, Part]) -> pl.DataFrame:
        """(row, key) for every combination of the parts' values (a record's values joined on its row)."""
        # The whole combination is not kept (only its prefixes are): it is the largest frame of a pass. It
        # may be another pass's prefix, kept already (given groups x surnames).
        items = tuple(parts.items())
        combined = self._joined.get(tuple((name, part.label) for name, part in items))
        if combined is None:
            combined = self._join(items)
        return combined.select(ROW, pl.struct(list(parts)).hash(_SEED).alias(KEY))


@dataclass(frozen=True)
class Pass:
    name: str
    query: dict[str, Part]
    reference: dict[str, Part]


def _same(**parts: Part) -> tuple[dict[str, Part], dict[str, Part]]:
    return parts, parts


def _names_and(**date_parts: Part) -> tuple[dict[str, Part], dict[str, Part]]:
    """Given-name identity group x any surname held x the given date parts."""
    return _same(g=_GIVEN_GROUPS, f=_FAMILY_KEYS, **date_parts)


PASSES: tuple[Pass, ...] = (
    Pass("dob_name", *_same(dob=_DOB, name=_column("name_keys"))),
    # Date of birth a day out or day/month swapped: the given name (up to equivalence) and surname sound.
    Pass(
        "near_dob_names",
        {"dob": _DOB_VARIANTS, "g": _GIVEN_GROUPS, "f": _column("family_ph")},
        {"dob": _DOB, "g": _GIVEN_GROUPS, "f": _column("family_ph")},
    ),
    # Same home, badly wrong birth date: any name part alike (given, middle, family, preferred or former),
    # so a given-name slip with the surname right, or names swapped, still meet. Surnames pair siblings:
    # a household's few records, the price of not losing a child with two errors at home.
    Pass("postcode_names", *_same(postcode=_column("postcode"), name=_column("name_keys"))),
    Pass("postcode_dob", *_same(postcode=_column("postcode"), dob=_DOB)),
    # Moved house and one date part wrong: names agree and two of year, month, day do.
    Pass("names_year_month", *_names_and(y=_column("dob_y"), m=_column("dob_m"))),
    Pass("names_year_day", *_names_and(y=_column("dob_y"), d=_column("dob_d"))),
    Pass("names_month_day", *_names_and(m=_column("dob_m"), d=_column("dob_d"))),
    Pass("nhs", *_same(nhs=_column("nhs"))),
    # A reference record with neither birth date nor postcode (no other pass but NHS number keys it): the
    # given name (up to equivalence) and any surname held. Only such records are keyed on that side, so the
    # pass costs nothing where every record has one or the other.
    Pass(
        "names_unplaced",
        {"g": _GIVEN_GROUPS, "f": _FAMILY_KEYS},
        {"g": _UNPLACED_GIVEN_GROUPS, "f": _FAMILY_KEYS},
    ),
)


@dataclass(frozen=True)
class ReferenceKeys:
    """One pass's reference-side keys, sorted (rows in no particular order within a key), with over-full
    keys already removed."""

    keys: npt.NDArray[np.uint64]
    rows: npt.NDArray[np.uint32]

    @classmethod
    def build(cls, long_parts: _LongParts, block_pass: Pass, max_block: int) -> ReferenceKeys:
        keyed = long_parts.keyed(block_pass.reference).sort(KEY)
        keys = keyed[KEY].to_numpy()
        # Sorted, a key's entries are one run: runs longer than `max_block` are dropped.
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))[: len(keys)])
        lengths = np.diff(np.append(starts, len(keys)))
        keep = np.repeat(lengths <= max_block, lengths)
        return cls(keys[keep], keyed[ROW].to_numpy()[keep])

    def as_frame(self) -> pl.DataFrame:
        return pl.DataFrame({KEY: self.keys, "ref_row": self.rows})


def build_reference(frame: pl.DataFrame, max_block: int) -> dict[str, ReferenceKeys]:
    long_parts = _LongParts(frame)
    return {p.name: ReferenceKeys.build(long_parts, p, max_block) for p in PASSES}


# Candidate pairs one query row may bring to scoring. On ordinary lists a row has a few (about 6 on average
# at 100k children, at most a few dozen); each key may still hold up to `max_block` reference records, and a
# list row may offer dozens of keys, so without this a contrived row reaches thousands and one list holds a
# worker for minutes (decision 0018, "Bounded work per list row"). Work per row past blocking is then at
# most this many pairs, each compared on bounded token lists (`frames.MAX_NAME_TOKENS`).
MAX_PAIRS_PER_ROW = 300

_ROW_SHIFT = np.uint64(32)


def candidate_pairs(
    query: pl.DataFrame, reference: dict[str, ReferenceKeys], max_pairs: int = MAX_PAIRS_PER_ROW
) -> pl.DataFrame:
    """Unique (row, ref_row) pairs over all passes, as UInt32 row positions in the two frames, in order.

    A row with more than `max_pairs` candidates keeps the `max_pairs` that the most passes found (see
    `_capped`)."""
    # Each pair as one 64-bit number, row first: sorting and de-duplicating one integer array is far cheaper
    # than a two-column unique.
    pair = pl.col(ROW).cast(pl.UInt64) * _ROWS | pl.col("ref_row").cast(pl.UInt64)
    long_parts = _LongParts(query)
    found = [
        long_parts.keyed(p.query)
        .join(reference[p.name].as_frame(), on=KEY, how="inner")
        .select(pair.alias("pair"))["pair"]
        for p in PASSES
        if len(reference[p.name].keys)  # a pass with no reference keys can find nothing
    ]
    if not found:
        return pl.DataFrame(schema={ROW: pl.UInt32, "ref_row": pl.UInt32})
    # Polars' sort is multi-threaded; equal neighbours are the pairs more than one pass found.
    pairs = _distinct_sorted(pl.concat(found).sort().to_numpy())
    per_row = np.bincount((pairs >> _ROW_SHIFT).astype(np.int64), minlength=query.height)
    if len(pairs) and per_row.max() > max_pairs:
        pairs = _capped(pairs, [f.to_numpy() for f in found], per_row > max_pairs, max_pairs)
    return pl.DataFrame(
        {
            # Sorted by row (then ref_row): flagged so, a caller's sort by row costs nothing.
            ROW: pl.Series(ROW, (pairs >> _ROW_SHIFT).astype(np.uint32)).set_sorted(),
            "ref_row": (pairs & np.uint64(_ROWS - 1)).astype(np.uint32),
        },
        schema={ROW: pl.UInt32, "ref_row": pl.UInt32},
    )


def _distinct_sorted(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """A sorted array without its repeats."""
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if len(values) else values


def _capped(
    pairs: npt.NDArray[np.uint64],
    by_pass: list[npt.NDArray[np.uint64]],
    over: npt.NDArray[np.bool_],
    max_pairs: int,
) -> npt.NDArray[np.uint64]:
    """`pairs` (sorted, distinct) with each row marked `over` cut to the `max_pairs` pairs found by the most
    passes, then the lowest reference rows.

    A child's own record shares a key with the row in nearly every pass (birth date with names, home with
    names, home with birth date, names with two date parts), a record that merely shares one common token
    with a contrived row in one or two. Only rows over the cap are ranked, so every other row keeps
    exactly the pairs it had, and a row's pairs never depend on other rows.
    """
    # Each pass counted once per pair (a pair may share several keys within one pass).
    hits = np.concatenate(
        [_distinct_sorted(np.sort(found[over[(found >> _ROW_SHIFT).astype(np.int64)]])) for found in by_pass]
    )
    hits.sort()
    starts = np.flatnonzero(np.concatenate(([True], hits[1:] != hits[:-1])))
    ranked, passes = hits[starts], np.diff(np.append(starts, len(hits)))
    rows = ranked >> _ROW_SHIFT
    # By row, then most passes, then lowest ref_row (the low bits of the pair, so the pair itself).
    order = np.lexsort((ranked, -passes, rows))
    ranked, rows = ranked[order], rows[order]
    first_of_row = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    rank = np.arange(len(rows)) - np.repeat(first_of_row, np.diff(np.append(first_of_row, len(rows))))
    kept = np.concatenate([pairs[~over[(pairs >> _ROW_SHIFT).astype(np.int64)]], ranked[rank < max_pairs]])
    kept.sort()
    return kept
