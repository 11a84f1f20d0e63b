"""Compound errors: two disagreements between the sides for the same child, at once.

Independent per-record rates rarely put two errors on one child, yet real misses nearly always carry two
(issue 10): a family that moved and took a step-parent's surname, a school that never heard of either; a
birth date keyed a day out on a record that also uses the child's known-as name. Each `CompoundErrors`
rate is the share of children (those on a list because they live in Wales, not the stale health rows)
given one such combination. A child gets at most one. The combination is planned once per child as a
set of `Slip`s per side; every record that side holds about the child then carries them, on top of the
side's ordinary `SideRates` corruptions. All rates default to 0, which leaves the population unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum


class Compound(StrEnum):
    """The combinations; each value is the name of its rate in `CompoundErrors`."""

    # One side holds the old address and the old surname; the other the new ones, no former name kept.
    stale_address_and_surname_change = "stale_address_and_surname_change"
    # One side holds the old address; a birth-date slip on either side.
    stale_address_and_dob_error = "stale_address_and_dob_error"
    # Both sides hold the current address; a birth-date slip and a given-name typo or known-as form.
    dob_error_and_given_variant = "dob_error_and_given_variant"
    # Given and family names swapped on one side and one more error (DOB, typo, postcode, old address).
    swapped_names_and_another_error = "swapped_names_and_another_error"
    # The school holds the old address with the new surname; health the new address with the old one.
    school_old_address_new_surname = "school_old_address_new_surname"
    # A child known by a middle name on one side, and a birth-date slip.
    middle_name_and_dob_error = "middle_name_and_dob_error"
    # One side holds the old address; a name error (typo, known-as form, swap) on either side.
    stale_address_and_name_error = "stale_address_and_name_error"
    # A birth-date slip and a surname typo or a postcode typo.
    dob_error_and_surname_or_postcode_error = "dob_error_and_surname_or_postcode_error"


class Slip(StrEnum):
    """One forced disagreement on one side's records."""

    stale_address = "stale_address"  # the previous address
    current_address = "current_address"  # the current address, whatever `SideRates.stale_address` says
    old_surname = "old_surname"  # the surname before the change, no former name recorded
    new_surname_only = "new_surname_only"  # the new surname, the old one nowhere on the record
    dob_error = "dob_error"
    given_typo = "given_typo"
    family_typo = "family_typo"
    known_as_given = "known_as_given"  # the known-as form as the given name
    known_by_middle = "known_by_middle"  # the first middle name as the given name
    swapped_names = "swapped_names"
    postcode_typo = "postcode_typo"


@dataclass(frozen=True, slots=True)
class CompoundErrors:
    """Shares of children given each combination (see `Compound`). They must add up to at most 1."""

    stale_address_and_surname_change: float = 0.0
    stale_address_and_dob_error: float = 0.0
    dob_error_and_given_variant: float = 0.0
    swapped_names_and_another_error: float = 0.0
    school_old_address_new_surname: float = 0.0
    middle_name_and_dob_error: float = 0.0
    stale_address_and_name_error: float = 0.0
    dob_error_and_surname_or_postcode_error: float = 0.0

    def __post_init__(self) -> None:
        if any(not 0.0 <= rate <= 1.0 for rate in self.rates().values()) or self.total > 1.0:
            raise ValueError("compound error rates must be shares that add up to at most 1")

    def rates(self) -> dict[Compound, float]:
        return {Compound(item.name): getattr(self, item.name) for item in fields(self)}

    @property
    def total(self) -> float:
        return sum(self.rates().values())

    def pick(self, roll: float) -> Compound | None:
        """The combination a uniform draw in [0, 1) falls on, or None (no compound error)."""
        for kind, rate in self.rates().items():
            if roll < rate:
                return kind
            roll -= rate
        return None

    @classmethod
    def each(cls, rate: float) -> CompoundErrors:
        """Every combination at the same rate."""
        return cls(**{item.name: rate for item in fields(cls)})


NO_COMPOUND_ERRORS = CompoundErrors()
