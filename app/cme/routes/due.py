"""The LA's due list: every legal clock running out by a date (removal duties, subject access requests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.cme import removals, subject_access_requests
from app.cme.dependencies import PREFIX, OfficerDep
from app.cme.schemas import DueList
from app.cme.views import duty_read, subject_access_request_read
from app.core.dates import HorizonDate
from app.core.dependencies import SessionDep
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.get("/due", operation_id="list_cme_due")
def list_due(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    before: Annotated[
        HorizonDate | None, Query(description="Clocks due on or before this date; default today.")
    ] = None,
) -> DueList:
    """Legal clocks due by `before`, overdue ones included, each with its state today."""
    now = clock.now()
    today = now.date()
    until = before or today
    duties = removals.due(session, officer, before=until, now=now)
    requests = subject_access_requests.due_subject_access_requests(session, officer, before=until, now=now)
    return DueList(
        today=today,
        before=until,
        items=[duty_read(duty, today) for duty in duties],
        subject_access_requests=[subject_access_request_read(request, today) for request in requests],
    )
