"""Data subject rights on a record: erasure, restriction, the subject access export."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.cme import rights
from app.cme.dependencies import PREFIX, WITH_ETAG, IfMatch, OfficerDep, RecordReplyDep
from app.cme.schemas import (
    AccessLogEntry,
    Erasure,
    EventRead,
    RecordRead,
    RecordStubRead,
    RestrictionChange,
    SubjectAccessExport,
)
from app.cme.views import record_read, removal_event_read
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.post(
    "/records/{record_id}/erasure",
    operation_id="erase_cme_record",
    responses=problem_responses(404, 412, 428),
)
def erase_record(
    record_id: uuid.UUID,
    body: Erasure,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordStubRead:
    """Data protection officer only (UK GDPR art. 17, where the law allows it): hard delete, as a removal."""
    stub = rights.erase_record(session, officer, record_id, body, if_match=if_match, now=clock.now())
    return RecordStubRead.model_validate(stub)


@router.put(
    "/records/{record_id}/restriction",
    operation_id="set_cme_record_restriction",
    responses={**WITH_ETAG, **problem_responses(404, 412, 428)},
)
def set_restriction(
    record_id: uuid.UUID,
    change: RestrictionChange,
    officer: OfficerDep,
    session: SessionDep,
    reply: RecordReplyDep,
    if_match: IfMatch = None,
) -> RecordRead:
    """Restrict processing (data subject right): the record stays stored but leaves every list; or lift it."""
    return reply(
        rights.set_restriction(session, officer, record_id, change, if_match=if_match, now=reply.now)
    )


@router.get(
    "/records/{record_id}/subject-access-export",
    operation_id="export_cme_record_for_subject_access",
    responses=problem_responses(404),
)
def subject_access_export(
    record_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessExport:
    """For the data protection officer: everything held about the child and its access log (audited)."""
    now = clock.now()
    export = rights.subject_access(session, officer, record_id, now=now)
    return SubjectAccessExport(
        generated_at=now,
        record=record_read(export.record, officer.role, now.date(), everything=True),
        history=[EventRead.model_validate(event) for event in export.history],
        removal_events=[removal_event_read(removal, now.date()) for removal in export.removal_events],
        access_log=[AccessLogEntry.model_validate(event) for event in export.access_log],
    )
