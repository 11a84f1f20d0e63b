"""Compulsory school age (CSA) as defined by s.8 Education Act 1996.

The CME Regulations define a "child" as a person of compulsory school age (reg 2), and reg 11 requires
removal once a child ceases to be of that age, so both ends of CSA are computed here from the date of
birth alone. Every function is pure: callers pass the reference date (`on`) explicitly.

Statute, paraphrased:

* s.8(2): CSA begins when the child attains the age of five if that happens on a prescribed day,
  otherwise at the beginning of the next prescribed day. Prescribed days (Education (Start of
  Compulsory School Age) Order 1998): 31 March, 31 August, 31 December.
* s.8(3): CSA ends at the end of the school leaving date (SLD) of a calendar year if the child
  (a) attains 16 after that SLD but before the beginning of the next school year, or (b) attains 16 on
  the SLD itself; otherwise (c) at the end of the first SLD after attaining 16. The SLD is the last
  Friday in June (Education (School Leaving Date) Order 1997).
* Family Law Reform Act 1969 s.9: an age is attained at the *start* of the relevant birthday.

Both ends are inclusive: a child is of CSA on the start day and on the end day.
"""

import calendar
from collections.abc import Callable
from datetime import date, timedelta
from enum import StrEnum

CSA_START_AGE = 5
CSA_END_AGE = 16

# (month, day) of the prescribed days, in calendar order.
PRESCRIBED_DAYS: tuple[tuple[int, int], ...] = ((3, 31), (8, 31), (12, 31))

_FRIDAY = 4

# Given a calendar year, the first day of the school year that begins in it.
SchoolYearStart = Callable[[int], date]


class CsaStatus(StrEnum):
    """Where a person stands relative to compulsory school age on a given day."""

    BELOW = "below"
    WITHIN = "within"
    ABOVE = "above"


def first_of_september(year: int) -> date:
    """Default school-year start: 1 September.

    s.579 EA 1996 starts the school year with the first term beginning after July, so the real day
    depends on term dates (open question Q8). 1 September is the conventional cohort boundary and the
    day most LA term calendars start on or after; pass a different `SchoolYearStart` where an LA's
    actual first term day is known.
    """
    return date(year, 9, 1)


def anniversary(dob: date, years: int) -> date:
    """The day on which a person born on `dob` attains the age `years`.

    A 29 February birth has no anniversary in a common year. No statute settles this for England and
    Wales; we take 1 March, the first day on which the full number of years has certainly elapsed, so
    the service never treats a child as having attained an age early. (Sources disagree; some say
    28 February. For CSA the choice is immaterial: either day leads to the same prescribed day,
    31 March, and to the same SLD in June.)
    """
    year = dob.year + years
    if dob.month == 2 and dob.day == 29 and not calendar.isleap(year):
        return date(year, 3, 1)
    return dob.replace(year=year)


def csa_start(dob: date) -> date:
    """First day of CSA: the 5th birthday if it is a prescribed day, else the next prescribed day."""
    fifth = anniversary(dob, CSA_START_AGE)
    # 31 December is the last prescribed day of every year, so the loop always finds one.
    return next(
        candidate
        for candidate in (date(fifth.year, month, day) for month, day in PRESCRIBED_DAYS)
        if candidate >= fifth
    )


def school_leaving_date(year: int) -> date:
    """The school leaving date for `year`: the last Friday in June."""
    june_30 = date(year, 6, 30)
    return june_30 - timedelta(days=(june_30.weekday() - _FRIDAY) % 7)


def csa_end(dob: date, school_year_start: SchoolYearStart = first_of_september) -> date:
    """Last day of CSA (the child is still of CSA on this day; it ends at midnight).

    `school_year_start` gives the first day of the school year beginning in a calendar year; it only
    matters for children whose 16th birthday falls between the default 1 September and the LA's real
    first term day (Q8). A child who attains 16 *on* the first day of the school year did not attain it
    "before the beginning" of that year, so they stay until the next year's SLD.
    """
    sixteenth = anniversary(dob, CSA_END_AGE)
    same_year_sld = school_leaving_date(sixteenth.year)
    # s.8(3)(b) (16 on the SLD) and (c) (16 before it, so this is the next SLD) give the same answer.
    if sixteenth <= same_year_sld:
        return same_year_sld
    # s.8(3)(a): 16 after the SLD but before the next school year begins.
    if sixteenth < school_year_start(sixteenth.year):
        return same_year_sld
    # s.8(3)(c): 16 once the new school year has begun, so the next SLD.
    return school_leaving_date(sixteenth.year + 1)


def csa_status(dob: date, on: date, school_year_start: SchoolYearStart = first_of_september) -> CsaStatus:
    """Whether the person is below, within or above compulsory school age on `on`."""
    if on < csa_start(dob):
        return CsaStatus.BELOW
    if on > csa_end(dob, school_year_start):
        return CsaStatus.ABOVE
    return CsaStatus.WITHIN


def is_compulsory_school_age(
    dob: date, on: date, school_year_start: SchoolYearStart = first_of_september
) -> bool:
    """True when the person is of compulsory school age on `on` (both ends inclusive)."""
    return csa_status(dob, on, school_year_start) is CsaStatus.WITHIN


def national_curriculum_year(dob: date, on: date) -> int:
    """Welsh year group of a child born on `dob`, for the school year containing `on`.

    Year groups are birth cohorts running 1 September to 31 August: Year 1 holds the children who turn
    6 during the school year, reception (0) those who turn 5, Year 11 those who turn 16. Values below
    0 (nursery and younger) and above 11 (sixth form and older) are returned as is. The cohort boundary
    is the fixed 1 September convention, independent of any LA's term dates, so no leap-day rule is
    needed: only the birth month and year matter.
    """
    school_year = on.year if on.month >= 9 else on.year - 1
    birth_cohort = dob.year if dob.month >= 9 else dob.year - 1
    return school_year - birth_cohort - CSA_START_AGE
