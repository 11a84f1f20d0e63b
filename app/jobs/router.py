from __future__ import annotations

import uuid

from fastapi import APIRouter

from app.core.dependencies import SessionDep
from app.core.errors import NotFound, problem_responses
from app.jobs import service
from app.jobs.schemas import JobRead
from app.security.dependencies import CallerDep

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", operation_id="get_job", responses=problem_responses(401, 404))
def get_job(job_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> JobRead:
    """Status and progress of a background job, for the partners it concerns."""
    job = service.get_visible(session, job_id, caller.partner_id)
    if job is None:
        raise NotFound("No such job.")
    return JobRead.model_validate(job)
