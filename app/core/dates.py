"""Plausible ranges of the dates partners and officers send (decision 0014), as pydantic types.

A date outside its field's range is refused by validation (422 problem+json naming the field), before any
clock is computed from it: no overflow past year 9999, no deadlines in year 1. The ranges are relative to
the service's today, which each request binds from the service clock (`bind_service_today`); outside a
request the system clock's UTC date stands in.
"""

from __future__ import annotations

import datetime as dt
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

# The CME pilot starts in 2025: nothing it records (awareness, receipt, notification, answer) happened before.
PILOT_START = dt.date(2025, 1, 1)

_service_today: ContextVar[dt.date | None] = ContextVar("service_today", default=None)


def bind_service_today(today: dt.date) -> None:
    """Make `today` the day date ranges are checked against for the rest of the current request."""
    _service_today.set(today)


def service_today() -> dt.date:
    return _service_today.get() or dt.datetime.now(dt.UTC).date()


def _years_after(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (or earlier, when negative); 29 February falls back to the 28th."""
    leap_day = (day.month, day.day) == (2, 29)
    return day.replace(year=day.year + years, day=28 if leap_day else day.day)


@dataclass(frozen=True, slots=True)
class DateRange:
    """The days one kind of date may take: from a fixed first day or `years_back` before today, to
    `years_ahead` after today (0: today itself)."""

    what: str
    not_before: dt.date | None = None
    years_back: int = 0
    years_ahead: int = 0

    def __post_init__(self) -> None:
        if (self.not_before is None) == (self.years_back == 0):
            raise ValueError("a date range starts either on a fixed day or some years before today")

    def bounds(self, today: dt.date) -> tuple[dt.date, dt.date]:
        earliest = self.not_before or _years_after(today, -self.years_back)
        return earliest, _years_after(today, self.years_ahead)

    def describe(self) -> str:
        earliest = str(self.not_before) if self.not_before else f"{self.years_back} years before today"
        plural = "s" if self.years_ahead > 1 else ""
        latest = f"{self.years_ahead} year{plural} after today" if self.years_ahead else "today"
        return f"Plausible range ({self.what}): from {earliest} to {latest} (service clock, UTC), inclusive."

    def check(self, day: dt.date) -> dt.date:
        earliest, latest = self.bounds(service_today())
        if day < earliest:
            raise PydanticCustomError(
                "date_too_early", "Must be on or after {earliest}.", {"earliest": earliest.isoformat()}
            )
        if day > latest:
            raise PydanticCustomError(
                "date_too_late", "Must be on or before {latest}.", {"latest": latest.isoformat()}
            )
        return day

    def document(self, schema: dict[str, Any]) -> None:
        """Add the range to the field's description in the OpenAPI document."""
        schema["description"] = " ".join(filter(None, (schema.get("description"), self.describe())))


EVENT = DateRange("a day something happened during the pilot", not_before=PILOT_START)
# A child may have left long before the LA hears of it (a stale health-list address), or be known to be
# leaving soon (reg 6: "likely to become" resident elsewhere).
DEPARTURE = DateRange("a day the child left or will leave the area", years_back=25, years_ahead=1)
# Compulsory school age ends at 16; a quarter of a century back leaves room for mistaken records to be
# corrected, not for typos such as 0201-03-02.
BIRTH = DateRange("a child's date of birth", years_back=25)
# How far ahead a due list may look: the CSA end of a child born today is about 17 years away.
HORIZON = DateRange("a day up to which clocks are listed", not_before=PILOT_START, years_ahead=20)


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date_only(value: Any) -> Any:
    """A date arrives as YYYY-MM-DD (`format: date`), nothing else: pydantic would also read a number as
    seconds since 1970 (`?before=0` as 1970-01-01) and a datetime string as its day."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_format", "Must be a date written YYYY-MM-DD.")


_ISO = BeforeValidator(iso_date_only)
EventDate = Annotated[dt.date, _ISO, AfterValidator(EVENT.check), Field(json_schema_extra=EVENT.document)]
DepartureDate = Annotated[
    dt.date, _ISO, AfterValidator(DEPARTURE.check), Field(json_schema_extra=DEPARTURE.document)
]
BirthDate = Annotated[dt.date, _ISO, AfterValidator(BIRTH.check), Field(json_schema_extra=BIRTH.document)]
HorizonDate = Annotated[
    dt.date, _ISO, AfterValidator(HORIZON.check), Field(json_schema_extra=HORIZON.document)
]
