"""Legal clocks: bank holidays, working-day arithmetic and deadlines.

Pure functions over `datetime.date`; nothing here reads the system clock. Callers pass `today`.

Bank holidays are those of England and Wales (Banking and Financial Dealings Act 1971 plus the
annual royal proclamations), computed from rules rather than listed per year. One-off holidays
declared by proclamation (jubilees, coronations, state funerals) are passed in as `extra_holidays`.
Years in which a regular holiday was moved rather than added (early May 1995 and 2020, spring 2002,
2012 and 2022) are not modelled: the computed regular day is still treated as a holiday.
"""

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache

_MONDAY = 0
_SATURDAY = 5
_WEEK = 7

# Reg 6(a): inform the receiving LA within 28 days of becoming aware.
REG6_NOTIFY_DAYS = 28
# Warn from day 21: a week before the 28-day deadline, and six days before the strictest reading
# (awareness day counted as day 1, deadline on awareness + 27 days).
REG6_WARN_FROM_DAY = 21
# UK GDPR art. 12(3): one month to answer a subject access request, extendable by two more.
SUBJECT_ACCESS_MONTHS = 1
SUBJECT_ACCESS_EXTENDED_MONTHS = 3
SUBJECT_ACCESS_WARN_DAYS = 7
# Internal target for "as soon as reasonably practicable": a policy choice, not law.
DEFAULT_ASAP_WORKING_DAYS = 5


class DeadlineBasis(StrEnum):
    """Where a deadline comes from, so reports can tell law from local policy."""

    STATUTORY = "statutory"  # a period stated in the Regulations
    INTERNAL_TARGET = "internal_target"  # our reading of "as soon as reasonably practicable"


class DeadlineState(StrEnum):
    NOT_DUE = "not_due"
    APPROACHING = "approaching"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class Deadline:
    """A date by which something must be done, and the date from which staff are alerted."""

    due_on: date
    warn_from: date
    basis: DeadlineBasis

    def __post_init__(self) -> None:
        if self.warn_from > self.due_on:
            raise ValueError("warn_from must not be after due_on")


@dataclass(frozen=True, slots=True)
class ClockSettings:
    """Policy knobs for the clocks; the lifecycle service builds this from configuration."""

    asap_working_days: int = DEFAULT_ASAP_WORKING_DAYS
    extra_holidays: frozenset[date] = frozenset()


def easter_sunday(year: int) -> date:
    """Easter Sunday in the Gregorian calendar (the anonymous Gregorian computus)."""
    golden = year % 19
    century, year_of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    moon_correction = (century + 8) // 25
    solar_correction = (century - moon_correction + 1) // 3
    epact = (19 * golden + century - leap_centuries - solar_correction + 15) % 30
    leap_years, year_rest = divmod(year_of_century, 4)
    weekday_offset = (32 + 2 * century_rest + 2 * leap_years - epact - year_rest) % 7
    limit_fix = (golden + 11 * epact + 22 * weekday_offset) // 451
    month, day = divmod(epact + weekday_offset - 7 * limit_fix + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=256)
def bank_holidays(year: int) -> frozenset[date]:
    """The regular bank holidays of England and Wales in `year`, including substitute days."""
    easter = easter_sunday(year)
    movable = {
        easter - timedelta(days=2),  # Good Friday
        easter + timedelta(days=1),  # Easter Monday
        _first_weekday(date(year, 5, 1), _MONDAY),  # early May
        _last_weekday(date(year, 5, 31), _MONDAY),  # spring
        _last_weekday(date(year, 8, 31), _MONDAY),  # summer
    }
    holidays = set(movable)
    # A fixed holiday on a weekend moves to the next weekday not already a holiday; taking them in
    # date order gives Christmas on Saturday -> Monday 27 and Boxing Day on Sunday -> Tuesday 28.
    for fixed in (date(year, 1, 1), date(year, 12, 25), date(year, 12, 26)):
        observed = fixed
        while observed.weekday() >= _SATURDAY or observed in holidays:
            observed += timedelta(days=1)
        holidays.add(observed)
    return frozenset(holidays)


def is_working_day(day: date, extra_holidays: frozenset[date] = frozenset()) -> bool:
    """Monday to Friday, not a bank holiday of England and Wales, not an extra configured holiday."""
    return day.weekday() < _SATURDAY and day not in bank_holidays(day.year) and day not in extra_holidays


def add_working_days(start: date, n: int, extra_holidays: frozenset[date] = frozenset()) -> date:
    """The `n`th working day after `start` (`start` itself is not counted; n=0 returns `start`)."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    remaining = n
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, extra_holidays):
            remaining -= 1
    return day


def reg6_notify_due(became_aware_on: date) -> Deadline:
    """Reg 6(a): inform the receiving LA within 28 days of the date of awareness.

    The day of awareness is not counted (due = awareness + 28 days), the usual reading of "within N
    days of"; the warning from day 21 covers the stricter reading that counts it.
    """
    return Deadline(
        due_on=became_aware_on + timedelta(days=REG6_NOTIFY_DAYS),
        warn_from=became_aware_on + timedelta(days=REG6_WARN_FROM_DAY),
        basis=DeadlineBasis.STATUTORY,
    )


def asap_due(
    event_date: date,
    working_days: int = DEFAULT_ASAP_WORKING_DAYS,
    extra_holidays: frozenset[date] = frozenset(),
) -> Deadline:
    """Internal deadline for a duty to act "as soon as reasonably practicable" after `event_date`.

    The duty is live from the event itself, so the alert starts on `event_date`.
    """
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    return Deadline(
        due_on=add_working_days(event_date, working_days, extra_holidays),
        warn_from=event_date,
        basis=DeadlineBasis.INTERNAL_TARGET,
    )


def add_calendar_months(start: date, months: int) -> date:
    """The same day of the month `months` later; the month's last day when it has no such day (31 Jan -> 28 Feb)."""
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def subject_access_due(received_on: date, months: int = SUBJECT_ACCESS_MONTHS) -> Deadline:
    """ICO: answer a subject access request within one calendar month of receipt (three when extended).

    The period runs to the corresponding date of the later month, the last day of that month when it has
    none, and moves to the next working day when that date is a weekend or bank holiday.
    """
    due_on = add_calendar_months(received_on, months)
    while not is_working_day(due_on):
        due_on += timedelta(days=1)
    return Deadline(
        due_on=due_on,
        warn_from=max(received_on, due_on - timedelta(days=SUBJECT_ACCESS_WARN_DAYS)),
        basis=DeadlineBasis.STATUTORY,
    )


def deadline_state(deadline: Deadline, today: date) -> DeadlineState:
    if today > deadline.due_on:
        return DeadlineState.OVERDUE
    if today == deadline.due_on:
        return DeadlineState.DUE_TODAY
    if today >= deadline.warn_from:
        return DeadlineState.APPROACHING
    return DeadlineState.NOT_DUE


def _first_weekday(first_of_month: date, weekday: int) -> date:
    return first_of_month + timedelta(days=(weekday - first_of_month.weekday()) % _WEEK)


def _last_weekday(last_of_month: date, weekday: int) -> date:
    return last_of_month - timedelta(days=(last_of_month.weekday() - weekday) % _WEEK)
