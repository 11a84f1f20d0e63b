"""GET /v1/statistics: the pilot's evaluation figures as JSON or CSV (work in service.py)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import Query, Response

from app.core.dependencies import SessionDep, SettingsDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep, authenticated_router
from app.statistics import service
from app.statistics.disclosure import Cell
from app.statistics.schemas import AreaStatistics, CellRead, StatisticsRead, Suppression

CSV_MEDIA_TYPE = "text/csv"
# In CSV a withheld figure reads "c" (confidential), the same whether it was small or protects a small one.
SUPPRESSED_MARK = "c"

router = authenticated_router(prefix="/v1/statistics", tags=["statistics"])


def _cell(cell: Cell) -> CellRead:
    return CellRead(value=cell.value, suppressed=cell.suppressed)


def _csv(table: service.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["area", "name", *table.measures])
    for area in table.areas:
        cells = (area.cells[measure] for measure in table.measures)
        values = [SUPPRESSED_MARK if c.suppressed else ("" if c.value is None else c.value) for c in cells]
        writer.writerow([area.code, area.name, *values])
    return out.getvalue()


@router.get(
    "",
    operation_id="get_statistics",
    response_model=StatisticsRead,
    responses={
        200: {"content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}}, "description": "JSON or CSV."},
        **problem_responses(403, 404),
    },
)
def get_statistics(
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    la: Annotated[
        str | None, Query(pattern=r"^W06[0-9]{6}$", description="One LA (GSS code); default: every LA.")
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="Response format.")] = "json",
) -> StatisticsRead | Response:
    """Counts per LA and for Wales, small counts suppressed.

    Welsh Government sees every LA; an LA's statistics role sees its own LA (another LA answers 404).
    Other callers get 403. Every read is audited.
    """
    now = clock.now()
    table = service.statistics_for(session, caller, la=la, pilot_las=settings.pilot_las, now=now)
    if format == "csv":
        return Response(_csv(table), media_type=CSV_MEDIA_TYPE)
    return StatisticsRead(
        as_of=now.date(),
        generated_at=now,
        measures=table.measures,
        suppression=Suppression(threshold=service.THRESHOLD, rule=service.SUPPRESSION_RULE),
        areas=[
            AreaStatistics(
                area=area.code,
                name=area.name,
                measures={measure: _cell(area.cells[measure]) for measure in table.measures},
            )
            for area in table.areas
        ],
    )
