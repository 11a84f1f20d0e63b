"""GET /v1/statistics: the pilot's evaluation figures as JSON or CSV (work in service.py)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Literal

from fastapi import Depends, Query, Response

from app.core.dependencies import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep, authenticated_router
from app.statistics import service
from app.statistics.disclosure import Cell
from app.statistics.periods import MONTH_PATTERN, Period
from app.statistics.schemas import AreaStatistics, CellRead, StatisticsRead, Suppression

CSV_MEDIA_TYPE = "text/csv"
# In CSV a withheld figure reads "c" (confidential), the same whether it was small or protects a small one.
SUPPRESSED_MARK = "c"

router = authenticated_router(prefix="/v1/statistics", tags=["statistics"])


def _cell(cell: Cell) -> CellRead:
    return CellRead(value=cell.value, suppressed=cell.suppressed)


def _csv(table: service.Table, period: Period) -> str:
    """One row per area; every row names the month end and period, so a saved file says what it counts."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["area", "name", "as_of", "period", *table.measures])
    for area in table.areas:
        cells = (area.cells[measure] for measure in table.measures)
        values = [SUPPRESSED_MARK if c.suppressed else ("" if c.value is None else c.value) for c in cells]
        writer.writerow([area.code, area.name, table.window.last.isoformat(), period.value, *values])
    return out.getvalue()


LaParam = Annotated[
    str | None, Query(pattern=r"^W06[0-9]{6}$", description="One LA (GSS code); default: every LA.")
]
AsOfParam = Annotated[
    str | None,
    Query(
        pattern=MONTH_PATTERN,
        description=(
            "Month (YYYY-MM) whose end the figures are as of; it must have ended, and not be before the "
            "service's first month. Default: the last month ended before today (UTC)."
        ),
    ),
]
PeriodParam = Annotated[
    Period, Query(description="`cumulative` to the month end, or `month`: what happened in that month.")
]


class CsvResponse(Response):
    media_type = CSV_MEDIA_TYPE


def _table(
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    la: LaParam = None,
    as_of: AsOfParam = None,
    period: PeriodParam = Period.cumulative,
) -> tuple[service.Table, Period, dt.datetime]:
    now = clock.now()
    table = service.statistics_for(
        session,
        caller,
        la=la,
        as_of=as_of,
        period=period,
        pilot_las=settings.pilot_las,
        service_start=settings.legal_window_start,
        now=now,
    )
    return table, period, now


TableDep = Annotated[tuple[service.Table, Period, dt.datetime], Depends(_table)]


@router.get(
    "",
    operation_id="get_statistics",
    response_model=StatisticsRead,
    responses={
        200: {
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with `format=csv` (generated clients: `GET /v1/statistics.csv`).",
        },
        **problem_responses(403, 404),
    },
)
def get_statistics(
    table: TableDep,
    format: Annotated[Literal["json", "csv"], Query(description="Response format.")] = "json",
) -> StatisticsRead | Response:
    """Counts per LA and for Wales as of a month end, small counts suppressed, counts rounded to 5.

    Figures never run to today: two reads in the same month give the same figures, so their difference
    reveals nothing. Welsh Government sees every LA; an LA's statistics role sees its own LA (another LA
    answers 404). Other callers get 403. A month not ended, or before the service, answers 422. Every read
    is audited.
    """
    figures, period, now = table
    if format == "csv":
        return CsvResponse(_csv(figures, period))
    return StatisticsRead(
        as_of=figures.window.last,
        period=period,
        generated_at=now,
        measures=figures.measures,
        suppression=Suppression(
            threshold=service.THRESHOLD, rounding=service.ROUNDING_BASE, rule=service.SUPPRESSION_RULE
        ),
        areas=[
            AreaStatistics(
                area=area.code,
                name=area.name,
                measures={measure: _cell(area.cells[measure]) for measure in figures.measures},
            )
            for area in figures.areas
        ],
    )


@router.get(
    ".csv",
    operation_id="get_statistics_csv",
    response_class=CsvResponse,
    responses={
        200: {
            "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "One row per area: area, name, as_of, period, then one column per measure; a "
            'withheld figure reads "c".',
        },
        **problem_responses(403, 404),
    },
)
def get_statistics_csv(table: TableDep) -> CsvResponse:
    """The figures of `GET /v1/statistics` as CSV only (the same access, suppression and audit): an operation
    of its own, so that a client generated from this document reads CSV as text."""
    figures, period, _ = table
    return CsvResponse(_csv(figures, period))
