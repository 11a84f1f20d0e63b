"""Enqueue, claim (FOR UPDATE SKIP LOCKED), complete and fail jobs. Callers own the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Integer, func, literal, or_, select, update
from sqlalchemy.orm import Session

from app.jobs.models import Job

ENQUEUED = "jobs.enqueued"
# A running job whose worker has not been heard of for this long is taken over (its worker died). A live
# worker is heard of every `worker.HEARTBEAT_SECONDS` while it runs a job, however long the job.
LEASE = dt.timedelta(seconds=30)
# How far back fair order looks for when a tenant was last served.
_SERVED_LOOKBACK = dt.timedelta(days=1)


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    now: dt.datetime,
    visible_to: list[str] | None = None,
    max_attempts: int = 5,
) -> Job:
    job = Job(
        id=uuid.uuid4(),
        kind=kind,
        payload=payload,
        visible_to=visible_to or [],
        status=JobStatus.queued,
        attempts=0,
        max_attempts=max_attempts,
        run_after=now,
        progress_done=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    session.info[ENQUEUED] = True  # in-process workers are woken when this commits (app.jobs.worker)
    return job


def tenant_of(dialect: str) -> ColumnElement[Any]:
    """Whose work a job is, for fair order: the last partner it is visible to (a health list's recipient
    LA, a register's sender); NULL for the service's own jobs (daily jobs, checkpoints)."""
    if dialect == "postgresql":
        return Job.visible_to.op("->>")(literal(-1, Integer))
    return func.json_extract(Job.visible_to, "$[#-1]")


def claim_next(session: Session, *, worker_id: str, now: dt.datetime, kinds: frozenset[str]) -> Job | None:
    """Lock the next runnable job for this worker, in fair order across tenants (LAs); concurrent workers
    skip rows others hold.

    Fair order: first the tenants with the fewest jobs running now (parallel workers spread over tenants),
    then the tenant served longest ago (one worker goes round the tenants: one LA's flood of lists cannot
    hold back another LA's one list behind all of its own), then the oldest job. The service's own jobs
    (no tenant) come first: they are few and short. Within a tenant, the oldest job first, as before.
    """
    tenant = tenant_of(session.get_bind().dialect.name)
    runnable = or_(
        (Job.status == JobStatus.queued) & (Job.run_after <= now),
        (Job.status == JobStatus.running) & (Job.locked_at < now - LEASE),
    )
    # Per tenant: how many of its jobs run now, and when one of its jobs was last heard of (claimed,
    # heartbeat, progress); a day back is enough to go round.
    live = (Job.status == JobStatus.running) & (Job.locked_at >= now - LEASE)
    served = (
        select(
            tenant.label("tenant"),
            func.count().filter(live).label("running"),
            func.max(Job.locked_at).label("last_served"),
        )
        .where(Job.locked_at >= now - _SERVED_LOOKBACK)
        .group_by(tenant)
        .subquery()
    )
    stmt = (
        select(Job)
        .outerjoin(served, served.c.tenant == tenant)
        # The conditions stay on the locked row itself: a row claimed and committed by another worker
        # meanwhile is re-checked against them, and skipped.
        .where(Job.kind.in_(kinds), runnable)
        .order_by(
            tenant.is_not(None),
            func.coalesce(served.c.running, 0),
            served.c.last_served.is_not(None),
            served.c.last_served,
            Job.run_after,
            Job.created_at,
        )
        .limit(1)
        .with_for_update(of=Job, skip_locked=True)
    )
    job = session.scalars(stmt).first()
    if job is None:
        return None
    job.status = JobStatus.running
    job.locked_by = worker_id
    job.locked_at = now
    job.attempts += 1
    session.flush()
    return job


def report_progress(
    session: Session, job_id: uuid.UUID, *, stage: str, done: int, total: int | None, now: dt.datetime
) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        job.stage = stage
        job.progress_done = done
        job.progress_total = total
        job.locked_at = now


def heartbeat(session: Session, job_id: uuid.UUID, *, worker_id: str, now: dt.datetime) -> None:
    """The worker running this job is alive."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == JobStatus.running)
        .values(locked_at=now)
    )


def complete(session: Session, job_id: uuid.UUID, *, result: dict[str, Any], now: dt.datetime) -> None:
    job = session.get(Job, job_id)
    if job is not None:
        job.status = JobStatus.succeeded
        job.stage = "done"
        if job.progress_total is not None:
            job.progress_done = job.progress_total
        job.result = result
        job.error = None
        job.finished_at = now
        job.locked_by = None


def complete_waiting(session: Session, results: dict[uuid.UUID, dict[str, Any]], *, now: dt.datetime) -> None:
    """Complete queued jobs whose work another job has done (the other lists of a matching round).

    A job a worker holds right now is left alone: it finds the work done and completes itself.
    """
    for job_id, result in results.items():
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued)
            .values(
                status=JobStatus.succeeded,
                stage="done",
                result=result,
                error=None,
                finished_at=now,
                locked_by=None,
            )
        )


def defer(session: Session, job_id: uuid.UUID, *, until: dt.datetime, stage: str) -> None:
    """Back to the queue until `until`; the attempt does not count (the job did no work)."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.status = JobStatus.queued
    job.run_after = until
    job.attempts -= 1
    job.locked_by = None
    job.stage = stage


def fail(session: Session, job_id: uuid.UUID, *, error: str, now: dt.datetime) -> None:
    """Retry with exponential backoff until attempts run out, then mark failed."""
    job = session.get(Job, job_id)
    if job is None:
        return
    job.error = error[:200]
    job.locked_by = None
    if job.attempts >= job.max_attempts:
        job.status = JobStatus.failed
        job.finished_at = now
    else:
        job.status = JobStatus.queued
        job.run_after = now + dt.timedelta(seconds=2**job.attempts)


def get_visible(session: Session, job_id: uuid.UUID, partner_id: str) -> Job | None:
    job = session.get(Job, job_id)
    if job is None or partner_id not in job.visible_to:
        return None
    return job
