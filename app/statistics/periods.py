"""Which days the statistics count: always whole, ended calendar months (UTC), never "up to today".

Figures up to the request date would change from one day to the next, and the difference of two readings
is the exact number of new cases in between, however small. Figures fixed at a month end read the same
all month, so only differences between month ends exist, and those are rounded (`disclosure.py`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from app.core.errors import ProblemError, ProblemItem

# The month a figure is published for, as the `as_of` query parameter spells it.
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
AS_OF_FIELD = "query.as_of"


class Period(StrEnum):
    cumulative = "cumulative"  # everything up to the end of the month
    month = "month"  # what happened in the month only


class InvalidReportingMonth(ProblemError):
    """A month the figures cannot be given for; same type as the framework's query-parameter errors."""

    status, slug, title = 422, "invalid-request", "Invalid request"


@dataclass(frozen=True, slots=True)
class Window:
    """Days `first` to `last` inclusive, UTC; `first` None: from the start of the service's data."""

    first: dt.date | None
    last: dt.date

    @property
    def start(self) -> dt.datetime | None:
        """First instant counted."""
        return None if self.first is None else _midnight(self.first)

    @property
    def end(self) -> dt.datetime:
        """First instant not counted: midnight after the last day."""
        return _midnight(self.last + dt.timedelta(days=1))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _invalid(code: str, message: str) -> InvalidReportingMonth:
    return InvalidReportingMonth(
        f"as_of: {message}", errors=[ProblemItem(field=AS_OF_FIELD, code=code, message=message)]
    )


def reporting_window(as_of: str | None, period: Period, *, today: dt.date, service_start: dt.date) -> Window:
    """The days counted for a request on `today` naming month `as_of` (YYYY-MM; default the last ended month).

    `as_of` matches `MONTH_PATTERN` (the route checks it). The month must have ended before `today` and
    must not be earlier than the month of `service_start` (no data can exist before it).
    """
    current = _first_of_month(today)
    if as_of is None:
        first = _first_of_month(current - dt.timedelta(days=1))
    else:
        first = dt.date(int(as_of[:4]), int(as_of[5:]), 1)
        if first >= current:
            raise _invalid("month_not_ended", "Figures are given only for months that have ended.")
        if first < _first_of_month(service_start):
            raise _invalid("before_service", f"The service holds no data before {service_start:%Y-%m}.")
    last = _first_of_month(first + dt.timedelta(days=31)) - dt.timedelta(days=1)
    return Window(first=first if period is Period.month else None, last=last)
