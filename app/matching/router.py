"""HTTP of matching: the LA review queue and real-time queries. Thin: the work is in service.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.matching import service
from app.matching.schemas import (
    DualRegistrationPage,
    MatchRequest,
    MatchResponse,
    ReviewDecision,
    ReviewDetail,
    ReviewPage,
    ReviewSummary,
    bind_nhs_number_enabled,
)
from app.security.dependencies import CallerDep

router = APIRouter(tags=["matching"])


@router.get(
    "/v1/matching/reviews", operation_id="list_match_reviews", responses=problem_responses(400, 401, 403)
)
def list_reviews(
    caller: CallerDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewPage:
    """Possible matches of the caller's LA awaiting an officer's decision, oldest first."""
    return service.list_reviews(session, caller, cursor=cursor, limit=limit)


@router.get(
    "/v1/matching/reviews/{review_id}",
    operation_id="get_match_review",
    responses=problem_responses(401, 403, 404),
)
def get_review(review_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> ReviewDetail:
    """The health child, the register record(s) it may be, and why."""
    return service.read_review(session, caller, review_id)


@router.post(
    "/v1/matching/reviews/{review_id}/decision",
    operation_id="decide_match_review",
    responses=problem_responses(401, 403, 404, 409),
)
def decide_review(
    review_id: uuid.UUID, body: ReviewDecision, caller: CallerDep, session: SessionDep
) -> ReviewSummary:
    """Confirm (the same child: matched) or reject (not the same: a CME candidate is opened)."""
    return service.decide_review(session, caller, review_id, body, now=dt.datetime.now(dt.UTC))


@router.get(
    "/v1/matching/dual-registrations",
    operation_id="list_dual_registrations",
    responses=problem_responses(400, 401, 403),
)
def list_dual_registrations(
    caller: CallerDep,
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DualRegistrationPage:
    """Children of the caller's LA found on more than one register (a school roll and the EHE register, two
    schools), oldest first: full detail of the caller's own registers' records, only the LA otherwise."""
    return service.list_dual_registrations(session, caller, cursor=cursor, limit=limit)


async def _nhs_numbers_as_configured(request: Request) -> None:
    """Before the body is validated (async: a sync dependency's context would not reach validation)."""
    bind_nhs_number_enabled(request.app.state.settings.nhs_number_enabled)


@router.post(
    "/v1/match",
    operation_id="match_records",
    responses=problem_responses(401, 403, 422),
    response_model_exclude_none=True,
    dependencies=[Depends(_nhs_numbers_as_configured)],
)
async def match_records(request: Request, body: MatchRequest, caller: CallerDep) -> MatchResponse:
    """Register records 1-100 children may be: full detail from the caller's own LA, only the LA otherwise."""
    state = request.app.state
    return await service.match_records(caller, body.records, state.match_index, state.read_audit)
