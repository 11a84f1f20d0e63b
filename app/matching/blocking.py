"""Blocking: which pairs are worth comparing at all.

Several passes, each a key built on both sides, are unioned. Each pass is meant to survive a different
failure of the others (see docs/decisions/0002-matching.md): the query side (health) varies its date of
birth (exact, +-1 day, day/month swapped) and both sides offer every name part, so swapped, moved,
changed or half-missing names still share a key. A key shared by more than `max_block` reference records
is skipped in that pass: it identifies no one, and other passes still carry the true pair.
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


def _dob_variants() -> pl.Expr:
    """Exact, the day either side, and day/month swapped (only where the swap is a different valid date)."""
    transposed = pl.when((pl.col("dob_d") <= 12) & (pl.col("dob_d") != pl.col("dob_m"))).then(
        pl.date(pl.col("dob_y"), pl.col("dob_d"), pl.col("dob_m"))
    )
    one_day = pl.duration(days=1)
    return pl.concat_list(pl.col("dob"), pl.col("dob") + one_day, pl.col("dob") - one_day, transposed)


def _given_groups() -> pl.Expr:
    return pl.concat_list("given_c1", "given_c2", "pref_c1", "pref_c2")


def _family_keys() -> pl.Expr:
    return pl.concat_list(pl.col("family"), pl.col("pref_family"), pl.col("former_family"))


def _keyed(frame: pl.DataFrame, parts: dict[str, pl.Expr]) -> pl.DataFrame:
    """(row, key) for every combination of the parts' values; list-valued parts are exploded."""
    long = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias(ROW), **parts)
    for name, dtype in long.schema.items():
        if isinstance(dtype, pl.List):
            long = long.explode(name)
    names = list(parts)
    return long.drop_nulls().select(ROW, pl.struct(names).hash(_SEED).alias(KEY))


KeyBuilder = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class Pass:
    name: str
    query: KeyBuilder
    reference: KeyBuilder


def _same(parts: Callable[[], dict[str, pl.Expr]]) -> KeyBuilder:
    return lambda frame: _keyed(frame, parts())


def _names_and(**date_parts: pl.Expr) -> KeyBuilder:
    """Given-name identity group x any surname held x the given date parts."""
    return _same(lambda: {"g": _given_groups(), "f": _family_keys(), **date_parts})


PASSES: tuple[Pass, ...] = (
    Pass(
        "dob_name",
        _same(lambda: {"dob": pl.col("dob"), "name": pl.col("name_keys")}),
        _same(lambda: {"dob": pl.col("dob"), "name": pl.col("name_keys")}),
    ),
    # Date of birth a day out or day/month swapped: the given name (up to equivalence) and surname sound.
    Pass(
        "near_dob_names",
        _same(lambda: {"dob": _dob_variants(), "g": _given_groups(), "f": pl.col("family_ph")}),
        _same(lambda: {"dob": pl.col("dob"), "g": _given_groups(), "f": pl.col("family_ph")}),
    ),
    # Same home, badly wrong birth date: a given-type name must sound alike (surnames would pair siblings).
    Pass(
        "postcode_given",
        _same(lambda: {"postcode": pl.col("postcode"), "name": pl.col("given_keys")}),
        _same(lambda: {"postcode": pl.col("postcode"), "name": pl.col("given_keys")}),
    ),
    Pass(
        "postcode_dob",
        _same(lambda: {"postcode": pl.col("postcode"), "dob": pl.col("dob")}),
        _same(lambda: {"postcode": pl.col("postcode"), "dob": pl.col("dob")}),
    ),
    # Moved house and one date part wrong: names agree and two of year, month, day do.
    Pass(
        "names_year_month",
        _names_and(y=pl.col("dob_y"), m=pl.col("dob_m")),
        _names_and(y=pl.col("dob_y"), m=pl.col("dob_m")),
    ),
    Pass(
        "names_year_day",
        _names_and(y=pl.col("dob_y"), d=pl.col("dob_d")),
        _names_and(y=pl.col("dob_y"), d=pl.col("dob_d")),
    ),
    Pass(
        "names_month_day",
        _names_and(m=pl.col("dob_m"), d=pl.col("dob_d")),
        _names_and(m=pl.col("dob_m"), d=pl.col("dob_d")),
    ),
    Pass("nhs", _same(lambda: {"nhs": pl.col("nhs")}), _same(lambda: {"nhs": pl.col("nhs")})),
)


@dataclass(frozen=True)
class ReferenceKeys:
    """One pass's reference-side keys, sorted, with over-full keys already removed."""

    keys: npt.NDArray[np.uint64]
    rows: npt.NDArray[np.uint32]

    @classmethod
    def build(cls, frame: pl.DataFrame, block_pass: Pass, max_block: int) -> ReferenceKeys:
        keyed = block_pass.reference(frame).filter(pl.len().over(KEY) <= max_block).sort(KEY, ROW)
        return cls(keyed[KEY].to_numpy(), keyed[ROW].to_numpy())

    def as_frame(self) -> pl.DataFrame:
        return pl.DataFrame({KEY: self.keys, "ref_row": self.rows})


def build_reference(frame: pl.DataFrame, max_block: int) -> dict[str, ReferenceKeys]:
    return {p.name: ReferenceKeys.build(frame, p, max_block) for p in PASSES}


def candidate_pairs(query: pl.DataFrame, reference: dict[str, ReferenceKeys]) -> pl.DataFrame:
    """Unique (row, ref_row) pairs over all passes, as UInt32 row positions in the two frames."""
    found = [
        p.query(query).join(reference[p.name].as_frame(), on=KEY, how="inner").select(ROW, "ref_row")
        for p in PASSES
    ]
    return pl.concat(found).unique()
