"""String-level corruptors: each makes exactly the kind of error it claims to."""

from __future__ import annotations

import dataclasses
import random
from datetime import date

import pytest
from rapidfuzz.distance import OSA

from app.synthetic.corruption import (
    HEALTH_RATES,
    corrupt_dob,
    hyphen_part_missing,
    postcode_format_variant,
    postcode_typo,
    strip_diacritics,
    typo,
)

NO_DOB_ERRORS = dataclasses.replace(
    HEALTH_RATES, dob_missing=0.0, dob_day_month_swapped=0.0, dob_off_by_one_day=0.0, dob_year_off_by_one=0.0
)


class TestStripDiacritics:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Siân", "Sian"),
            ("Gwenllïan", "Gwenllian"),
            ("Tŷ Gwyn", "Ty Gwyn"),
            ("Siôn", "Sion"),
            ("Jones", "Jones"),
        ],
    )
    def test_folds_welsh_accents(self, text: str, expected: str) -> None:
        assert strip_diacritics(text) == expected


class TestTypo:
    def test_is_one_edit_away_and_keeps_the_initial(self) -> None:
        rng = random.Random(1)
        results = [typo("Gwenllian", rng) for _ in range(400)]
        assert all(OSA.distance(result, "Gwenllian") == 1 for result in results if result != "Gwenllian")
        assert all(result[0] == "G" for result in results)
        assert sum(result != "Gwenllian" for result in results) > 350
        assert {len(result) for result in results} == {8, 9, 10}

    def test_leaves_very_short_names_alone(self) -> None:
        assert typo("Al", random.Random(1)) == "Al"


class TestSurnameAndPostcode:
    def test_hyphen_part_missing_keeps_one_part(self) -> None:
        rng = random.Random(2)
        assert {hyphen_part_missing("Lloyd-Williams", rng) for _ in range(50)} == {"Lloyd", "Williams"}

    def test_postcode_format_variants_normalise_back(self) -> None:
        rng = random.Random(3)
        variants = {postcode_format_variant("CF10 1AB", rng) for _ in range(60)}
        assert variants == {"CF101AB", "cf10 1ab", "CF10  1AB"}
        assert {v.upper().replace(" ", "") for v in variants} == {"CF101AB"}

    def test_postcode_typo_changes_one_character_and_keeps_the_space(self) -> None:
        rng = random.Random(4)
        for _ in range(100):
            typed = postcode_typo("SA31 2PD", rng)
            assert typed[4] == " " and len(typed) == 8
            assert sum(a != b for a, b in zip(typed, "SA31 2PD", strict=True)) <= 1


class TestCorruptDob:
    def test_no_error_rates_keep_the_date(self) -> None:
        rng = random.Random(5)
        assert all(corrupt_dob(date(2014, 3, 7), NO_DOB_ERRORS, rng) == date(2014, 3, 7) for _ in range(100))

    def test_day_month_swap(self) -> None:
        rates = dataclasses.replace(NO_DOB_ERRORS, dob_day_month_swapped=1.0)
        assert corrupt_dob(date(2014, 3, 7), rates, random.Random(6)) == date(2014, 7, 3)
        # Day above 12 cannot be a month, so the date survives.
        assert corrupt_dob(date(2014, 3, 17), rates, random.Random(6)) == date(2014, 3, 17)

    def test_off_by_one_day_and_year(self) -> None:
        day_rates = dataclasses.replace(NO_DOB_ERRORS, dob_off_by_one_day=1.0)
        year_rates = dataclasses.replace(NO_DOB_ERRORS, dob_year_off_by_one=1.0)
        rng = random.Random(7)
        assert {corrupt_dob(date(2014, 3, 1), day_rates, rng) for _ in range(40)} == {
            date(2014, 2, 28),
            date(2014, 3, 2),
        }
        assert {corrupt_dob(date(2016, 2, 29), year_rates, rng) for _ in range(40)} == {
            date(2015, 2, 28),
            date(2017, 2, 28),
        }

    def test_missing(self) -> None:
        rates = dataclasses.replace(NO_DOB_ERRORS, dob_missing=1.0)
        assert corrupt_dob(date(2014, 3, 7), rates, random.Random(8)) is None
