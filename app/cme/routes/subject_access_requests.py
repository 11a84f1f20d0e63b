"""Subject access requests (data protection officer): record one, read it, extend it, answer it."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from app.cme import subject_access_requests
from app.cme.dependencies import PREFIX, OfficerDep
from app.cme.schemas import (
    SubjectAccessAnswer,
    SubjectAccessExtension,
    SubjectAccessRequestCreate,
    SubjectAccessRequestRead,
)
from app.cme.views import subject_access_request_read
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep

router = APIRouter(prefix=PREFIX)


@router.post(
    "/subject-access-requests",
    operation_id="record_cme_subject_access_request",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404),
)
def record_subject_access_request(
    body: SubjectAccessRequestCreate, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessRequestRead:
    """Data protection officer: a subject access request about a record was received; start its clock."""
    now = clock.now()
    request = subject_access_requests.record_subject_access_request(session, officer, body, now=now)
    return subject_access_request_read(request, now.date())


@router.get(
    "/subject-access-requests/{request_id}",
    operation_id="get_cme_subject_access_request",
    responses=problem_responses(404),
)
def get_subject_access_request(
    request_id: uuid.UUID, officer: OfficerDep, session: SessionDep, clock: ClockDep
) -> SubjectAccessRequestRead:
    """Data protection officer: one subject access request and where its deadline stands."""
    now = clock.now()
    request = subject_access_requests.get_subject_access_request(session, officer, request_id, now=now)
    return subject_access_request_read(request, now.date())


@router.post(
    "/subject-access-requests/{request_id}/extension",
    operation_id="extend_cme_subject_access_request",
    responses=problem_responses(404, 409, 422),
)
def extend_subject_access_request(
    request_id: uuid.UUID,
    body: SubjectAccessExtension,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> SubjectAccessRequestRead:
    """Data protection officer: two more months for a complex request or numerous ones, once, if the
    requester was told within the first month (409 otherwise)."""
    now = clock.now()
    request = subject_access_requests.extend_subject_access_request(
        session, officer, request_id, body, now=now
    )
    return subject_access_request_read(request, now.date())


@router.post(
    "/subject-access-requests/{request_id}/answer",
    operation_id="answer_cme_subject_access_request",
    responses=problem_responses(404, 409, 422),
)
def answer_subject_access_request(
    request_id: uuid.UUID,
    body: SubjectAccessAnswer,
    officer: OfficerDep,
    session: SessionDep,
    clock: ClockDep,
) -> SubjectAccessRequestRead:
    """Data protection officer: the request was answered; its clock stops and it leaves the due list
    (409 if it was answered already)."""
    now = clock.now()
    request = subject_access_requests.answer_subject_access_request(
        session, officer, request_id, body, now=now
    )
    return subject_access_request_read(request, now.date())
