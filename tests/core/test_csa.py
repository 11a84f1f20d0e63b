"""Compulsory school age, s.8 Education Act 1996 (reg 2 "child"; R11.2 end computable from DOB)."""

from datetime import date, timedelta

import pytest

from app.core.csa import (
    CsaStatus,
    anniversary,
    csa_end,
    csa_start,
    csa_status,
    first_of_september,
    is_compulsory_school_age,
    national_curriculum_year,
    school_leaving_date,
)


def _every_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


class TestCsaStart:
    def test_brief_example_fifth_birthday_10_feb_2024_starts_31_mar_2024(self) -> None:
        assert csa_start(date(2019, 2, 10)) == date(2024, 3, 31)

    @pytest.mark.parametrize(
        "dob",
        [date(2019, 3, 31), date(2019, 8, 31), date(2019, 12, 31)],
        ids=["31-mar", "31-aug", "31-dec"],
    )
    def test_fifth_birthday_on_a_prescribed_day_starts_that_day(self, dob: date) -> None:
        assert csa_start(dob) == dob.replace(year=2024)

    @pytest.mark.parametrize(
        ("dob", "expected"),
        [
            (date(2019, 3, 30), date(2024, 3, 31)),
            (date(2019, 3, 31), date(2024, 3, 31)),
            (date(2019, 4, 1), date(2024, 8, 31)),
            (date(2019, 8, 30), date(2024, 8, 31)),
            (date(2019, 8, 31), date(2024, 8, 31)),
            (date(2019, 9, 1), date(2024, 12, 31)),
            (date(2019, 12, 30), date(2024, 12, 31)),
            (date(2019, 12, 31), date(2024, 12, 31)),
            (date(2019, 1, 1), date(2024, 3, 31)),
        ],
    )
    def test_prescribed_day_boundaries_day_before_on_and_after(self, dob: date, expected: date) -> None:
        assert csa_start(dob) == expected

    def test_start_day_is_inclusive(self) -> None:
        dob = date(2019, 2, 10)
        assert csa_status(dob, date(2024, 3, 30)) is CsaStatus.BELOW
        assert csa_status(dob, date(2024, 3, 31)) is CsaStatus.WITHIN

    def test_start_is_always_a_prescribed_day_no_earlier_than_fifth_birthday(self) -> None:
        for dob in _every_day(date(2019, 1, 1), date(2020, 12, 31)):
            start = csa_start(dob)
            assert (start.month, start.day) in {(3, 31), (8, 31), (12, 31)}
            assert anniversary(dob, 5) <= start < anniversary(dob, 5) + timedelta(days=153)


class TestSchoolLeavingDate:
    @pytest.mark.parametrize(
        ("year", "expected"),
        [
            (2022, date(2022, 6, 24)),
            (2023, date(2023, 6, 30)),
            (2024, date(2024, 6, 28)),
            (2026, date(2026, 6, 26)),
        ],
    )
    def test_last_friday_in_june(self, year: int, expected: date) -> None:
        assert school_leaving_date(year) == expected

    def test_is_always_the_last_friday_of_june(self) -> None:
        for year in range(2000, 2101):
            sld = school_leaving_date(year)
            assert sld.weekday() == 4
            assert sld.month == 6
            assert (sld + timedelta(days=7)).month == 7


class TestCsaEnd:
    def test_brief_example_dob_23_sep_2007_ends_28_jun_2024(self) -> None:
        assert csa_end(date(2007, 9, 23)) == date(2024, 6, 28)

    @pytest.mark.parametrize(
        ("dob", "expected"),
        [
            (date(2008, 2, 10), date(2024, 6, 28)),  # 16 before the SLD: that year's SLD, s.8(3)(c)
            (date(2008, 6, 28), date(2024, 6, 28)),  # 16 on the SLD, s.8(3)(b)
            (date(2008, 6, 29), date(2024, 6, 28)),  # 16 the day after the SLD, s.8(3)(a)
            (date(2008, 7, 15), date(2024, 6, 28)),  # July leaver, s.8(3)(a)
            (date(2008, 8, 31), date(2024, 6, 28)),  # last day before the school year, s.8(3)(a)
            (date(2008, 9, 1), date(2025, 6, 27)),  # 16 on the first day of the school year
            (date(2008, 9, 2), date(2025, 6, 27)),
        ],
    )
    def test_statutory_cases_around_the_sld_and_school_year_start(self, dob: date, expected: date) -> None:
        assert csa_end(dob) == expected

    def test_august_leaver_is_past_csa_before_turning_16(self) -> None:
        dob = date(2008, 8, 20)
        assert csa_status(dob, date(2024, 6, 28)) is CsaStatus.WITHIN
        assert csa_status(dob, date(2024, 6, 29)) is CsaStatus.ABOVE
        assert anniversary(dob, 16) > date(2024, 6, 29)

    def test_end_day_is_inclusive(self) -> None:
        dob = date(2007, 9, 23)
        assert is_compulsory_school_age(dob, date(2024, 6, 28))
        assert not is_compulsory_school_age(dob, date(2024, 6, 29))

    def test_q8_later_school_year_start_moves_early_september_birthdays_a_year_earlier(self) -> None:
        def fourth_of_september(year: int) -> date:
            return date(year, 9, 4)

        assert csa_end(date(2008, 9, 3)) == date(2025, 6, 27)
        assert csa_end(date(2008, 9, 3), fourth_of_september) == date(2024, 6, 28)
        # Attaining 16 on the first day of the school year is not "before the beginning" of it.
        assert csa_end(date(2008, 9, 4), fourth_of_september) == date(2025, 6, 27)
        assert csa_status(date(2008, 9, 3), date(2024, 7, 1), fourth_of_september) is CsaStatus.ABOVE

    def test_default_school_year_starts_on_1_september(self) -> None:
        assert first_of_september(2025) == date(2025, 9, 1)


class TestLeapDayBirths:
    def test_birthday_in_a_common_year_is_1_march(self) -> None:
        assert anniversary(date(2020, 2, 29), 5) == date(2025, 3, 1)
        assert anniversary(date(2084, 2, 29), 16) == date(2100, 3, 1)

    def test_birthday_in_a_leap_year_is_29_february(self) -> None:
        assert anniversary(date(2008, 2, 29), 16) == date(2024, 2, 29)

    def test_still_below_csa_on_28_february_and_within_from_31_march(self) -> None:
        dob = date(2020, 2, 29)
        assert csa_start(dob) == date(2025, 3, 31)
        assert csa_status(dob, date(2025, 3, 30)) is CsaStatus.BELOW
        assert csa_status(dob, date(2025, 3, 31)) is CsaStatus.WITHIN
        assert csa_end(dob) == date(2036, 6, 27)

    def test_1_march_or_28_february_rule_gives_the_same_csa(self) -> None:
        for year in range(1996, 2100, 4):
            leap_dob = date(year, 2, 29)
            for neighbour in (date(year, 2, 28), date(year, 3, 1)):
                assert csa_start(leap_dob) == csa_start(neighbour)
                assert csa_end(leap_dob) == csa_end(neighbour)


class TestCsaStatus:
    def test_reports_below_within_above(self) -> None:
        dob = date(2010, 5, 5)
        assert csa_status(dob, date(2015, 8, 30)) is CsaStatus.BELOW
        assert csa_status(dob, date(2015, 8, 31)) is CsaStatus.WITHIN
        assert csa_status(dob, date(2026, 6, 26)) is CsaStatus.WITHIN
        assert csa_status(dob, date(2026, 6, 27)) is CsaStatus.ABOVE

    def test_before_birth_is_below(self) -> None:
        assert csa_status(date(2024, 1, 1), date(2020, 1, 1)) is CsaStatus.BELOW


class TestNationalCurriculumYear:
    @pytest.mark.parametrize(
        ("dob", "on", "expected"),
        [
            (date(2018, 10, 15), date(2024, 10, 1), 1),  # turns 6 during 2024/25
            (date(2018, 9, 1), date(2024, 9, 1), 1),  # 1 Sept birthday: oldest in the cohort
            (date(2018, 8, 31), date(2024, 8, 31), 1),  # last day of 2023/24
            (date(2018, 8, 31), date(2024, 9, 1), 2),
            (date(2019, 1, 1), date(2024, 1, 15), 0),  # reception
            (date(2020, 6, 1), date(2024, 1, 15), -1),  # nursery
            (date(2007, 9, 23), date(2024, 6, 1), 11),
            (date(2008, 2, 29), date(2023, 12, 1), 11),
        ],
    )
    def test_cohorts_run_1_september_to_31_august(self, dob: date, on: date, expected: int) -> None:
        assert national_curriculum_year(dob, on) == expected

    def test_csa_starts_in_reception_and_ends_in_year_11(self) -> None:
        # Cross-checks two independent rules: s.8 dates against the cohort year groups.
        for dob in _every_day(date(2007, 1, 1), date(2009, 12, 31)):
            assert national_curriculum_year(dob, csa_start(dob)) == 0
            assert national_curriculum_year(dob, csa_end(dob)) == 11
