"""How a list holder gets a child's details wrong: per-side rates and the string-level corruptors.

Each side (health, education) renders the same true person through its own `SideRates`, independently,
so every disagreement a matcher meets is one that a real pair of systems produces: transcription
typos, accents lost by a system that cannot store them, a known-as name entered as the given name, a
hyphen lost, an address one side has not caught up with, a postcode typed without its space.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_POSTCODE_CHARS = "ABDEFGHJLNPRSTUWXY0123456789"


@dataclass(frozen=True, slots=True)
class SideRates:
    """Per-record probabilities of each corruption on one side. See docs/decisions/0003-synthetic-data.md."""

    # Names
    known_as_in_preferred: float  # person has a known-as name: put it in preferred_given_name
    known_as_as_given: float  # person has a known-as name: record it as the given name instead
    swap_given_family: float
    strip_diacritics: float  # whole record: the system cannot store accents
    hyphen_part_missing: float  # hyphenated surname: only one part recorded
    hyphen_as_space: float
    stale_family_name: float  # surname changed: this side still holds the old one
    former_name_recorded: float  # surname changed and this side holds the new one: old one in former_names
    drop_middle: float
    middle_into_given: float  # "Mary" + "Ann" recorded as given name "Mary Ann"
    known_by_middle: float  # middle name used as the given name
    typo_given: float
    typo_family: float
    upper_family: float  # family name in capitals, as many clinical systems hold it
    # Date of birth
    dob_day_month_swapped: float
    dob_off_by_one_day: float
    dob_year_off_by_one: float
    dob_missing: float
    # Address
    welsh_street_form: float  # bilingual street recorded in Welsh
    welsh_town_form: float
    postcode_missing: float
    postcode_format_variant: float  # no space, lower case, or two spaces
    postcode_typo: float
    address_lines_missing: float
    # The family moved house: this side still holds the previous address (each side draws on its own)
    stale_address: float


HEALTH_RATES = SideRates(
    known_as_in_preferred=0.0,  # health records have no preferred-name field
    known_as_as_given=0.12,
    swap_given_family=0.003,
    strip_diacritics=0.55,
    hyphen_part_missing=0.15,
    hyphen_as_space=0.15,
    stale_family_name=0.5,
    former_name_recorded=0.3,
    drop_middle=0.3,
    middle_into_given=0.02,
    known_by_middle=0.01,
    typo_given=0.012,
    typo_family=0.012,
    upper_family=0.25,
    dob_day_month_swapped=0.003,
    dob_off_by_one_day=0.002,
    dob_year_off_by_one=0.002,
    dob_missing=0.0005,
    welsh_street_form=0.05,
    welsh_town_form=0.02,
    postcode_missing=0.01,
    postcode_format_variant=0.1,
    postcode_typo=0.004,
    address_lines_missing=0.003,
    stale_address=0.5,
)

EDUCATION_RATES = SideRates(
    known_as_in_preferred=0.6,
    known_as_as_given=0.2,
    swap_given_family=0.002,
    strip_diacritics=0.15,
    hyphen_part_missing=0.1,
    hyphen_as_space=0.1,
    stale_family_name=0.3,
    former_name_recorded=0.4,
    drop_middle=0.1,
    middle_into_given=0.02,
    known_by_middle=0.01,
    typo_given=0.008,
    typo_family=0.008,
    upper_family=0.02,
    dob_day_month_swapped=0.002,
    dob_off_by_one_day=0.002,
    dob_year_off_by_one=0.001,
    dob_missing=0.0002,
    welsh_street_form=0.3,
    welsh_town_form=0.15,
    postcode_missing=0.005,
    postcode_format_variant=0.05,
    postcode_typo=0.003,
    address_lines_missing=0.002,
    stale_address=0.5,
)


@lru_cache(maxsize=1 << 16)  # names, streets and towns repeat endlessly
def strip_diacritics(text: str) -> str:
    """Siân -> Sian, Gwenllïan -> Gwenllian, Tŷ -> Ty: what a system without accents stores."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def typo(text: str, rng: random.Random) -> str:
    """One keying error: substitution, deletion, insertion or adjacent transposition."""
    if len(text) < 3:
        return text
    # Leave the first letter alone most of the time: people rarely mistype the initial.
    position = rng.randrange(1, len(text))
    kind = rng.randrange(4)
    if kind == 0:
        replacement = rng.choice(_LOWER)
        return text[:position] + replacement + text[position + 1 :]
    if kind == 1:
        return text[:position] + text[position + 1 :]
    if kind == 2:
        return text[:position] + rng.choice(_LOWER) + text[position:]
    if position == len(text) - 1:
        position -= 1
    return text[:position] + text[position + 1] + text[position] + text[position + 2 :]


def hyphen_part_missing(family: str, rng: random.Random) -> str:
    parts = family.split("-")
    return parts[rng.randrange(len(parts))]


def postcode_format_variant(postcode: str, rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return postcode.replace(" ", "")
    if kind == 1:
        return postcode.lower()
    return postcode.replace(" ", "  ")


def postcode_typo(postcode: str, rng: random.Random) -> str:
    """One character of the postcode keyed wrongly (never the space)."""
    positions = [index for index, ch in enumerate(postcode) if ch != " "]
    position = rng.choice(positions)
    return postcode[:position] + rng.choice(_POSTCODE_CHARS) + postcode[position + 1 :]


def corrupt_dob(dob: date, rates: SideRates, rng: random.Random) -> date | None:
    """The date of birth as this side holds it; None when the side has none."""
    roll = rng.random()
    if roll < rates.dob_missing:
        return None
    roll -= rates.dob_missing
    if roll < rates.dob_day_month_swapped:
        if dob.day <= 12 and dob.day != dob.month:
            return date(dob.year, dob.day, dob.month)
        return dob
    roll -= rates.dob_day_month_swapped
    if roll < rates.dob_off_by_one_day:
        return dob + timedelta(days=rng.choice((-1, 1)))
    roll -= rates.dob_off_by_one_day
    if roll < rates.dob_year_off_by_one:
        return _year_off(dob, rng)
    return dob


def dob_error(dob: date, rng: random.Random) -> date:
    """A birth-date slip that always changes the date: day and month swapped, a day out, or the year out.

    A date that cannot be swapped (day over 12, or day equal to month) gets a day out instead."""
    kind = rng.randrange(3)
    if kind == 0 and dob.day <= 12 and dob.day != dob.month:
        return date(dob.year, dob.day, dob.month)
    if kind < 2:
        return dob + timedelta(days=rng.choice((-1, 1)))
    return _year_off(dob, rng)


def _year_off(dob: date, rng: random.Random) -> date:
    year = dob.year + rng.choice((-1, 1))
    # 29 February has no twin in a common year; 28 February is what a keying slip would give.
    return dob.replace(year=year, day=28) if (dob.month, dob.day) == (2, 29) else dob.replace(year=year)
