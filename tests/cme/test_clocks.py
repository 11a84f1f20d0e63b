"""Working days, bank holidays of England and Wales, and deadline states (R6.2, R6.3, R11.1)."""

from datetime import date, timedelta

import pytest

from app.cme.clocks import (
    ClockSettings,
    Deadline,
    DeadlineBasis,
    DeadlineState,
    add_working_days,
    asap_due,
    bank_holidays,
    deadline_state,
    easter_sunday,
    is_working_day,
    reg6_notify_due,
)

CORONATION_2023 = date(2023, 5, 8)

# Published England and Wales lists (gov.uk), for years with no moved or one-off holiday, plus 2023
# whose one-off coronation holiday is passed separately.
PUBLISHED_BANK_HOLIDAYS = {
    2021: ["01-01", "04-02", "04-05", "05-03", "05-31", "08-30", "12-27", "12-28"],
    2023: ["01-02", "04-07", "04-10", "05-01", "05-29", "08-28", "12-25", "12-26"],
    2024: ["01-01", "03-29", "04-01", "05-06", "05-27", "08-26", "12-25", "12-26"],
    2025: ["01-01", "04-18", "04-21", "05-05", "05-26", "08-25", "12-25", "12-26"],
    2026: ["01-01", "04-03", "04-06", "05-04", "05-25", "08-31", "12-25", "12-28"],
    2027: ["01-01", "03-26", "03-29", "05-03", "05-31", "08-30", "12-27", "12-28"],
}


class TestEasterSunday:
    @pytest.mark.parametrize(
        "expected",
        [
            date(1818, 3, 22),  # earliest possible
            date(1943, 4, 25),  # latest possible
            date(2000, 4, 23),
            date(2008, 3, 23),
            date(2019, 4, 21),
            date(2024, 3, 31),
            date(2025, 4, 20),
            date(2026, 4, 5),
            date(2038, 4, 25),
            date(2285, 3, 22),
        ],
    )
    def test_known_dates(self, expected: date) -> None:
        assert easter_sunday(expected.year) == expected

    def test_always_a_sunday_between_22_march_and_25_april(self) -> None:
        for year in range(1900, 2300):
            easter = easter_sunday(year)
            assert easter.weekday() == 6
            assert date(year, 3, 22) <= easter <= date(year, 4, 25)


class TestBankHolidays:
    @pytest.mark.parametrize("year", sorted(PUBLISHED_BANK_HOLIDAYS))
    def test_matches_published_list(self, year: int) -> None:
        expected = {date.fromisoformat(f"{year}-{month_day}") for month_day in PUBLISHED_BANK_HOLIDAYS[year]}
        assert bank_holidays(year) == expected

    @pytest.mark.parametrize(
        ("year", "expected"),
        [
            (2022, {date(2022, 1, 3)}),  # 1 Jan on Saturday
            (2023, {date(2023, 1, 2)}),  # 1 Jan on Sunday
        ],
    )
    def test_new_year_substitute(self, year: int, expected: set[date]) -> None:
        assert {day for day in bank_holidays(year) if day.month == 1} == expected

    @pytest.mark.parametrize(
        ("year", "expected"),
        [
            (2021, {date(2021, 12, 27), date(2021, 12, 28)}),  # Christmas Sat, Boxing Day Sun
            (2022, {date(2022, 12, 26), date(2022, 12, 27)}),  # Christmas Sun
            (2026, {date(2026, 12, 25), date(2026, 12, 28)}),  # Boxing Day Sat
            (2025, {date(2025, 12, 25), date(2025, 12, 26)}),  # both weekdays
        ],
    )
    def test_christmas_and_boxing_day_substitutes(self, year: int, expected: set[date]) -> None:
        assert {day for day in bank_holidays(year) if day.month == 12} == expected

    def test_eight_distinct_weekdays_every_year(self) -> None:
        for year in range(1980, 2200):
            holidays = bank_holidays(year)
            assert len(holidays) == 8
            assert all(day.weekday() < 5 and day.year == year for day in holidays)


class TestWorkingDays:
    def test_weekends_holidays_and_extras_are_not_working_days(self) -> None:
        assert is_working_day(date(2025, 6, 2))
        assert not is_working_day(date(2025, 6, 7))  # Saturday
        assert not is_working_day(date(2025, 6, 8))  # Sunday
        assert not is_working_day(date(2025, 8, 25))  # summer bank holiday
        assert is_working_day(CORONATION_2023)  # not a regular holiday...
        assert not is_working_day(CORONATION_2023, frozenset({CORONATION_2023}))  # ...only when configured

    @pytest.mark.parametrize(
        ("start", "n", "expected"),
        [
            (date(2025, 6, 2), 0, date(2025, 6, 2)),
            (date(2025, 6, 6), 1, date(2025, 6, 9)),  # Friday -> Monday
            (date(2025, 6, 7), 1, date(2025, 6, 9)),  # Saturday -> Monday
            (date(2025, 4, 17), 1, date(2025, 4, 22)),  # over Good Friday and Easter Monday
            (date(2025, 5, 3), 1, date(2025, 5, 6)),  # over early May bank holiday
            (date(2026, 12, 24), 1, date(2026, 12, 29)),  # over Christmas and substitute Boxing Day
            (date(2025, 12, 19), 5, date(2025, 12, 30)),
            (date(2025, 12, 31), 1, date(2026, 1, 2)),  # across the year end
        ],
    )
    def test_add_working_days(self, start: date, n: int, expected: date) -> None:
        assert add_working_days(start, n) == expected

    def test_extra_holidays_are_skipped(self) -> None:
        friday = date(2023, 5, 5)
        assert add_working_days(friday, 1) == CORONATION_2023
        assert add_working_days(friday, 1, frozenset({CORONATION_2023})) == date(2023, 5, 9)

    def test_result_is_a_working_day_with_exactly_n_working_days_after_start(self) -> None:
        start = date(2025, 3, 1)
        for n in range(1, 60):
            result = add_working_days(start, n)
            assert is_working_day(result)
            days_between = [start + timedelta(days=k) for k in range(1, (result - start).days + 1)]
            assert sum(is_working_day(day) for day in days_between) == n

    def test_negative_n_is_refused(self) -> None:
        with pytest.raises(ValueError, match="n must not be negative"):
            add_working_days(date(2025, 6, 2), -1)


class TestReg6NotifyDue:
    def test_r6_2_due_28_days_after_awareness_with_warning_from_day_21(self) -> None:
        deadline = reg6_notify_due(date(2025, 5, 1))
        assert deadline == Deadline(
            due_on=date(2025, 5, 29), warn_from=date(2025, 5, 22), basis=DeadlineBasis.STATUTORY
        )

    def test_r6_2_counts_calendar_days_not_working_days(self) -> None:
        assert reg6_notify_due(date(2025, 12, 20)).due_on == date(2026, 1, 17)

    def test_r6_2_strict_reading_deadline_falls_inside_the_warning_window(self) -> None:
        aware = date(2025, 5, 1)
        strict_last_day = aware + timedelta(days=27)  # awareness day counted as day 1
        assert deadline_state(reg6_notify_due(aware), strict_last_day) is DeadlineState.APPROACHING


class TestAsapDue:
    def test_r11_1_default_is_five_working_days_and_alerts_from_the_event(self) -> None:
        deadline = asap_due(date(2025, 12, 19))
        assert deadline == Deadline(
            due_on=date(2025, 12, 30), warn_from=date(2025, 12, 19), basis=DeadlineBasis.INTERNAL_TARGET
        )

    def test_r6_3_configurable_working_days_and_extra_holidays(self) -> None:
        deadline = asap_due(date(2023, 5, 5), working_days=1, extra_holidays=frozenset({CORONATION_2023}))
        assert deadline.due_on == date(2023, 5, 9)
        assert asap_due(date(2025, 6, 2), working_days=10).due_on == date(2025, 6, 16)

    def test_zero_working_days_is_refused(self) -> None:
        with pytest.raises(ValueError, match="working_days must be at least 1"):
            asap_due(date(2025, 6, 2), working_days=0)

    def test_clock_settings_default_matches_asap_default(self) -> None:
        assert ClockSettings().asap_working_days == 5
        assert ClockSettings().extra_holidays == frozenset()


class TestDeadlineState:
    DEADLINE = Deadline(due_on=date(2025, 5, 29), warn_from=date(2025, 5, 22), basis=DeadlineBasis.STATUTORY)

    @pytest.mark.parametrize(
        ("today", "expected"),
        [
            (date(2025, 5, 1), DeadlineState.NOT_DUE),
            (date(2025, 5, 21), DeadlineState.NOT_DUE),
            (date(2025, 5, 22), DeadlineState.APPROACHING),
            (date(2025, 5, 28), DeadlineState.APPROACHING),
            (date(2025, 5, 29), DeadlineState.DUE_TODAY),
            (date(2025, 5, 30), DeadlineState.OVERDUE),
        ],
    )
    def test_states_around_warning_and_due_dates(self, today: date, expected: DeadlineState) -> None:
        assert deadline_state(self.DEADLINE, today) is expected

    def test_warning_after_due_date_is_refused(self) -> None:
        with pytest.raises(ValueError, match="warn_from must not be after due_on"):
            Deadline(due_on=date(2025, 5, 1), warn_from=date(2025, 5, 2), basis=DeadlineBasis.STATUTORY)
