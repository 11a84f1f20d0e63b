"""The candidate work queue (reg 3): list, read, history, confirm, resolve, erase."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from app.cme import candidates
from app.cme.dependencies import (
    CREATED_WITH_ETAG,
    PREFIX,
    CmeSettingsDep,
    CursorParam,
    District,
    Limit,
    OfficerDep,
    RecordReplyDep,
    YearGroup,
)
from app.cme.domain import CandidateStatus, SubjectType
from app.cme.schemas import (
    CandidatePage,
    CandidateRead,
    ConfirmCandidate,
    Erasure,
    History,
    RecordRead,
    ResolveCandidate,
)
from app.cme.shared import history
from app.cme.views import candidate_read, history_read
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.get("/candidates", operation_id="list_cme_candidates", responses=problem_responses(400))
def list_candidates(
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
    settings: CmeSettingsDep,
    status_: Annotated[CandidateStatus | None, Query(alias="status")] = CandidateStatus.OPEN,
    postcode_district: District = None,
    national_curriculum_year: YearGroup = None,
    sort: Literal["opened_at", "-opened_at"] = "opened_at",
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> CandidatePage:
    """The LA's candidate work queue (reg 3): health-list children nobody matched, oldest first by default."""
    now = clock.now()
    where = candidates.candidate_filter(
        status=status_,
        postcode_district=postcode_district,
        national_curriculum_year=national_curriculum_year,
        today=now.date(),
    )
    page = candidates.list_candidates(
        session,
        officer,
        where=where,
        sort=sort,
        limit=min(limit, settings.max_page_size),
        cursor=cursor,
        now=now,
    )
    return CandidatePage(
        items=[candidate_read(row, now.date()) for row in page.rows], next_cursor=page.next_cursor
    )


@router.get("/candidates/{candidate_id}", operation_id="get_cme_candidate", responses=problem_responses(404))
def get_candidate(
    candidate_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    now = clock.now()
    return candidate_read(candidates.read_candidate(session, officer, candidate_id, now=now), now.date())


@router.get(
    "/candidates/{candidate_id}/history",
    operation_id="get_cme_candidate_history",
    responses=problem_responses(404),
)
def get_candidate_history(
    candidate_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> History:
    events = history(session, officer, SubjectType.CANDIDATE, candidate_id, now=clock.now())
    return history_read(candidate_id, events)


@router.post(
    "/candidates/{candidate_id}/confirm",
    operation_id="confirm_cme_candidate",
    status_code=status.HTTP_201_CREATED,
    responses={**CREATED_WITH_ETAG, **problem_responses(404, 409)},
)
def confirm_candidate(
    candidate_id: uuid.UUID,
    decision: ConfirmCandidate,
    officer: OfficerDep,
    session: SessionDep,
    reply: RecordReplyDep,
) -> RecordRead:
    """Reg 3 (a)(b)(c) all hold: create the CME record from the candidate, logging who decided and why.
    409 when the candidate is decided already, or the child is not of compulsory school age today."""
    record = candidates.confirm_candidate(session, officer, candidate_id, decision, now=reply.now)
    return reply(record, created=True)


@router.post(
    "/candidates/{candidate_id}/resolve",
    operation_id="resolve_cme_candidate",
    responses=problem_responses(404, 409),
)
def resolve_candidate(
    candidate_id: uuid.UUID, body: ResolveCandidate, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    """Close a candidate without a record; its personal data is deleted, the outcome kept."""
    now = clock.now()
    return candidate_read(
        candidates.resolve_candidate(session, officer, candidate_id, body.outcome, now=now), now.date()
    )


@router.post(
    "/candidates/{candidate_id}/erasure",
    operation_id="erase_cme_candidate",
    responses=problem_responses(404, 409),
)
def erase_candidate(
    candidate_id: uuid.UUID, body: Erasure, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> CandidateRead:
    """Data protection officer only (UK GDPR art. 17): close an undecided candidate and delete its data."""
    now = clock.now()
    return candidate_read(
        candidates.erase_candidate(session, officer, candidate_id, body, now=now), now.date()
    )
