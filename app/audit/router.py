"""HTTP for the data protection officer: the signed audit checkpoints (work in checkpoints.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.audit import checkpoints
from app.audit.schemas import CheckpointPage
from app.core.dependencies import SessionDep
from app.core.errors import problem_responses
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep, authenticated_router

router = authenticated_router(prefix="/v1/audit", tags=["audit"], responses=problem_responses(403))


@router.get("/checkpoints", operation_id="list_audit_checkpoints", responses=problem_responses(400))
def list_checkpoints(
    caller: CallerDep,
    session: SessionDep,
    clock: ClockDep,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
) -> CheckpointPage:
    """The daily signed checkpoints of the audit log's hash chain, newest first.

    For an LA's data protection officer, who keeps them and checks the log against them; other callers get
    403. Each JWS verifies with the service key at /.well-known/jwks.json. Every read is audited.
    """
    return checkpoints.list_checkpoints(session, caller, cursor=cursor, limit=limit, now=clock.now())
