"""Removal (regs 6-11): record a ground the LA became aware of, remove the record."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.cme import removals
from app.cme.dependencies import PREFIX, CmeSettingsDep, IfMatch, OfficerDep
from app.cme.schemas import RecordStubRead, RemovalEventCreate, RemovalEventRead, RemoveRecord
from app.cme.views import removal_event_read
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.post(
    "/records/{record_id}/removal-events",
    operation_id="create_cme_removal_event",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409),
)
def create_removal_event(
    record_id: uuid.UUID,
    body: RemovalEventCreate,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
) -> RemovalEventRead:
    """The LA became aware of a removal ground (regs 6-11): store it with evidence; start the legal clocks."""
    now = clock.now()
    added = removals.add_removal_event(session, officer, record_id, body, now=now, clocks=settings.clocks)
    return removal_event_read(added, now.date())


@router.post(
    "/records/{record_id}/removal",
    operation_id="remove_cme_record",
    responses=problem_responses(404, 409, 412, 428),
)
def remove_record(
    record_id: uuid.UUID,
    body: RemoveRecord,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    if_match: IfMatch = None,
) -> RecordStubRead:
    """Remove the record (hard delete) on a recorded ground; answers the non-identifying stub that remains."""
    stub = removals.remove_record(
        session, officer, record_id, body.ground, if_match=if_match, now=clock.now()
    )
    return RecordStubRead.model_validate(stub)
