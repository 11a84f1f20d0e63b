"""Liveness and readiness probes (unauthenticated, no data)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from app.core.dependencies import SessionDep
from app.core.errors import ServiceUnavailable, problem_responses

router = APIRouter(tags=["operations"])


class HealthStatus(BaseModel):
    status: str


@router.get("/healthz", operation_id="healthz")
async def healthz() -> HealthStatus:
    """The process is up."""
    return HealthStatus(status="ok")


@router.get("/readyz", operation_id="readyz", responses=problem_responses(503))
def readyz(session: SessionDep) -> HealthStatus:
    """The database is reachable."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable("The database is not reachable.") from exc
    return HealthStatus(status="ready")
