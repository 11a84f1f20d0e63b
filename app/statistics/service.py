"""The pilot's evaluation statistics: per LA and for Wales, counts of non-identifying data, suppressed.

Who may see them: Welsh Government (all LAs and Wales) and an LA caller with the statistics role (its
own LA and Wales). Suppression is applied to the whole table before a caller's rows are picked, so a
cell reads the same whoever is allowed to see it. Figures are as of the end of an ended month
(`periods.py`): cumulative to it, or the flows of that month; either way they never change during a month.
"""

from __future__ import annotations

import datetime as dt
import statistics as pystats
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.cme.removal import RemovalGround
from app.core.config import wales_reference
from app.core.errors import NotFound
from app.partners.models import PartnerKind
from app.security.caller import Caller
from app.statistics import repository
from app.statistics.disclosure import (
    ROUNDING_BASE,
    THRESHOLD,
    Cell,
    Column,
    protect_counts,
    protect_statistic,
)
from app.statistics.periods import Period, Window, reporting_window
from app.submissions.schemas import EDUCATION_KINDS

WALES = "W92000004"
MEDIAN_DAYS = "median_days_to_resolution"
SUPPRESSION_RULE = (
    "Counts under 5 are withheld. For each measure, further LA cells (smallest first) are withheld until "
    "the withheld LA cells number at least two and sum to at least 5; if none is left, the Wales total is "
    "withheld. Every published count is then rounded to the nearest multiple of 5; the Wales total is the "
    "rounded sum of the true LA counts. A median (days, not rounded) is withheld when it rests on fewer "
    "than 5 cases."
)
_REGISTERS = sorted(kind.value for kind in EDUCATION_KINDS)


@dataclass(frozen=True, slots=True)
class Area:
    code: str
    name: str
    cells: dict[str, Cell]


@dataclass(frozen=True, slots=True)
class Table:
    window: Window
    measures: list[str]
    areas: list[Area]  # LAs in code order, then Wales


def _la_names() -> dict[str, str]:
    return {la["gss_code"]: la["name"] for la in wales_reference()["local_authorities"]}


def _count_measures(session: Session, window: Window) -> dict[str, Mapping[str, int]]:
    matched = repository.matched_by_register(session, window)
    removals = repository.removals_by_ground(session, window)
    return {
        "children_received": repository.children_received(session, window),
        **{f"matched_{register}": matched.get(register, {}) for register in _REGISTERS},
        "candidates": repository.candidates(session, window),
        "records_created": repository.records_created(session, window),
        **{f"removals_{ground.value}": removals.get(ground.value, {}) for ground in RemovalGround},
        "transfers_sent": repository.transfers_sent(session, window),
        "transfers_received": repository.transfers_received(session, window),
        "deadlines_met": repository.deadlines_met(session, window),
        "deadlines_missed": repository.deadlines_missed(session, window),
    }


def build_table(session: Session, *, window: Window, pilot_las: list[str]) -> Table:
    """Every measure for every pilot LA (and any other LA holding data) and for Wales, suppressed."""
    counts = _count_measures(session, window)
    durations = repository.days_to_resolution(session, window)
    las = sorted(set(pilot_las).union(*(by_la.keys() for by_la in counts.values()), durations.keys()))
    columns: dict[str, Column] = {
        measure: protect_counts({la: by_la.get(la, 0) for la in las}) for measure, by_la in counts.items()
    }
    names = _la_names()
    areas = []
    for la in las:
        cells = {measure: column.by_la[la] for measure, column in columns.items()}
        cells[MEDIAN_DAYS] = _median(durations.get(la, []))
        areas.append(Area(code=la, name=names.get(la, la), cells=cells))
    wales = {measure: column.wales for measure, column in columns.items()}
    wales[MEDIAN_DAYS] = _median([days for values in durations.values() for days in values])
    areas.append(Area(code=WALES, name="Wales", cells=wales))
    return Table(window=window, measures=[*columns, MEDIAN_DAYS], areas=areas)


def _median(days: list[float]) -> Cell:
    return protect_statistic(round(pystats.median(days), 1) if days else None, len(days))


def scope(caller: Caller, la: str | None) -> str | None:
    """The one LA the caller may see and asks for (None: every LA), or 404. Wales is always included.

    Who may ask at all (the Welsh Government, an LA's statistics role) is `app.security.authorization`.
    """
    if caller.partner_kind is PartnerKind.welsh_government:
        return la
    # An LA's statistics role: another LA's figures do not exist for this caller.
    if la is not None and la != caller.partner_id:
        raise NotFound("No statistics for that area.")
    return caller.partner_id


def statistics_for(
    session: Session,
    caller: Caller,
    *,
    la: str | None,
    as_of: str | None,
    period: Period,
    pilot_las: list[str],
    service_start: dt.date,
    now: dt.datetime,
) -> Table:
    """The table rows this caller may see (one LA or all, plus Wales) for the month `as_of` (YYYY-MM;
    default the last ended month); the read is audited.
    """
    wanted = scope(caller, la)
    window = reporting_window(as_of, period, today=now.date(), service_start=service_start)
    table = build_table(session, window=window, pilot_las=pilot_las)
    areas = [area for area in table.areas if wanted is None or area.code in (wanted, WALES)]
    if wanted is not None and len(areas) == 1:
        raise NotFound("No statistics for that area.")
    # Which figures were read: each area's table for the month and period shown ("W06000001@2025-09").
    audit.record(
        session,
        actor=caller,
        action="statistics.read",
        object_type=f"statistics_{period.value}",
        object_ids=[f"{area.code}@{window.last:%Y-%m}" for area in areas],
        purpose="pilot_evaluation",
        now=now,
    )
    return Table(window=window, measures=table.measures, areas=areas)


__all__ = [
    "ROUNDING_BASE",
    "SUPPRESSION_RULE",
    "THRESHOLD",
    "Table",
    "build_table",
    "scope",
    "statistics_for",
]
