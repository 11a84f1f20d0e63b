"""Liveness and readiness probes (unauthenticated, no data)."""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Engine, text

from app.core.db import sqlite_accepts_writes
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
    """The database is reachable, and (the embedded SQLite) would take a write within a second."""
    try:
        session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable("The database is not reachable.") from exc
    engine = session.get_bind()
    if engine.dialect.name == "sqlite" and not sqlite_accepts_writes(cast(Engine, engine)):
        raise ServiceUnavailable(
            "The database is busy: a write waited more than a second.", headers={"Retry-After": "1"}
        )
    return HealthStatus(status="ready")
