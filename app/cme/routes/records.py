"""CME records: list, read, history, correct (reg 5)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.cme import records
from app.cme.dependencies import (
    PREFIX,
    WITH_ETAG,
    CmeSettingsDep,
    CursorParam,
    District,
    IfMatch,
    Limit,
    OfficerDep,
    RecordReplyDep,
    YearGroup,
)
from app.cme.domain import RecordStatus, SubjectType
from app.cme.schemas import History, RecordPage, RecordPatch, RecordRead
from app.cme.shared import history
from app.cme.views import history_read, record_read
from app.core.dates import HorizonDate
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.get("/records", operation_id="list_cme_records", responses=problem_responses(400))
def list_records(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
    status_: Annotated[RecordStatus | None, Query(alias="status")] = None,
    due_before: Annotated[
        HorizonDate | None,
        Query(description="Records with a removal clock or CSA end on or before this date."),
    ] = None,
    postcode_district: District = None,
    national_curriculum_year: YearGroup = None,
    sensitive: bool | None = None,
    suspected_inaccurate: bool | None = None,
    sort: Literal["created_at", "-created_at"] = "created_at",
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> RecordPage:
    """The LA's CME records (restricted ones are never listed)."""
    now = clock.now()
    where = records.record_filter(
        officer,
        status=status_,
        due_before=due_before,
        postcode_district=postcode_district,
        national_curriculum_year=national_curriculum_year,
        sensitive=sensitive,
        suspected_inaccurate=suspected_inaccurate,
        today=now.date(),
    )
    page = records.list_records(
        session,
        officer,
        where=where,
        sort=sort,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        now=now,
    )
    return RecordPage(
        items=[record_read(row, officer.role, now.date()) for row in page.rows], next_cursor=page.next_cursor
    )


@router.get(
    "/records/{record_id}",
    operation_id="get_cme_record",
    responses={**WITH_ETAG, **problem_responses(404)},
)
def get_record(
    record_id: uuid.UUID, officer: OfficerDep, session: SessionDep, reply: RecordReplyDep
) -> RecordRead:
    return reply(records.read_record(session, officer, record_id, now=reply.now))


@router.get(
    "/records/{record_id}/history", operation_id="get_cme_record_history", responses=problem_responses(404)
)
def get_record_history(
    record_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> History:
    return history_read(record_id, history(session, officer, SubjectType.RECORD, record_id, now=clock.now()))


@router.patch(
    "/records/{record_id}",
    operation_id="correct_cme_record",
    responses={**WITH_ETAG, **problem_responses(404, 412, 428)},
)
def correct_record(
    record_id: uuid.UUID,
    patch: RecordPatch,
    officer: OfficerDep,
    session: SessionDep,
    reply: RecordReplyDep,
    if_match: IfMatch = None,
) -> RecordRead:
    """Reg 5: correct or complete a record, with a reason; If-Match is required."""
    return reply(records.correct_record(session, officer, record_id, patch, if_match=if_match, now=reply.now))
