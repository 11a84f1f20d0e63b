"""Once-a-day jobs: a chain of jobs in the shared queue, one per date, scheduled under an advisory lock.

Each run first schedules the next day's job, then does its work, so a failing day is retried by the job
machinery and never ends the chain. `schedule_day` is check-then-insert under the kind's lock, so however
many processes call it for a date, one job exists for that date; workers claim jobs with SKIP LOCKED, so
one worker runs it. A tick on every worker loop schedules today's job, so the chain starts and heals in any
deployment.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.jobs import service as jobs_service
from app.jobs.models import Job

# A job for a date is looked for among jobs of its kind created this recently (the chain creates the next
# day's job at most a day ahead).
_LOOKBACK = dt.timedelta(days=3)


def lock(session: Session, key: int) -> None:
    """Take the transaction-scoped advisory lock `key` until the caller's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    # SQLite (the embedded single-process default) runs one in-process worker.


def start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def schedule_day(session: Session, kind: str, day: dt.date, *, lock_key: int, now: dt.datetime) -> Job | None:
    """Enqueue the `kind` job for `day` (due at its start, or now if later); None if it already exists.

    Holds the lock until the caller's transaction ends, so a concurrent caller sees this job.
    """
    lock(session, lock_key)
    recent = session.scalars(
        select(Job.payload).where(Job.kind == kind, Job.created_at >= now - _LOOKBACK)
    ).all()
    if any(payload.get("day") == day.isoformat() for payload in recent):
        return None
    job = jobs_service.enqueue(session, kind, {"day": day.isoformat()}, now=now)
    job.run_after = max(now, start_of(day))
    session.flush()
    return job
