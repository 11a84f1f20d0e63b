"""The daily CME job (`cme_daily`): reg 11 clocks for children past CSA, and stale-candidate escalation.

Scheduling is a chain of jobs in the shared queue, one per date: each run first schedules the next day's
job, then does its work. `schedule_day` is check-then-insert under a lock, so however many processes
call it for a date, one job exists for that date; and workers claim jobs with SKIP LOCKED, so one
worker runs it. `tick` schedules today's job; every worker loop calls it (at start, then once a minute,
see `app.jobs.worker.Worker.tick`), so the chain starts and heals in any deployment.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.cme import service as cme_service
from app.cme.clocks import ClockSettings
from app.cme.config import get_cme_settings
from app.cme.domain import CandidateStatus, Purpose, SubjectType
from app.cme.models import CmeCandidate, CmeEvent
from app.core.config import get_settings
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.worker import Handler, JobContext

DAILY_KIND = "cme_daily"
ESCALATED = "escalated"
# Fixed key of the advisory lock that serialises scheduling and running of the daily job ("CMEDAY").
DAILY_LOCK_KEY = 0x43_4D_45_44_41_59
# A job for a date is looked for among cme_daily jobs created this recently (the chain creates the next
# day's job at most a day ahead).
_LOOKBACK = dt.timedelta(days=3)


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DAILY_LOCK_KEY})
    # SQLite (the embedded single-process default) runs one in-process worker.


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def schedule_day(session: Session, day: dt.date, *, now: dt.datetime) -> Job | None:
    """Enqueue the daily job for `day` (due at its start, or now if later); None if it already exists.

    Holds the lock until the caller's transaction ends, so a concurrent caller sees this job.
    """
    _lock(session)
    recent = session.scalars(
        select(Job.payload).where(Job.kind == DAILY_KIND, Job.created_at >= now - _LOOKBACK)
    ).all()
    if any(payload.get("day") == day.isoformat() for payload in recent):
        return None
    job = jobs_service.enqueue(session, DAILY_KIND, {"day": day.isoformat()}, now=now)
    job.run_after = max(now, _start_of(day))
    session.flush()
    return job


def tick(session_factory: sessionmaker[Session], *, now: dt.datetime) -> Job | None:
    """Make sure today's daily job exists (idempotent; safe from any number of processes)."""
    with session_factory.begin() as session:
        return schedule_day(session, now.date(), now=now)


def stale_candidates(session: Session, *, opened_before: dt.datetime) -> Sequence[CmeCandidate]:
    """Open candidates opened before the cut-off that have not been escalated yet."""
    escalated = exists().where(
        CmeEvent.subject_id == CmeCandidate.id,
        CmeEvent.subject_type == SubjectType.CANDIDATE,
        CmeEvent.action == ESCALATED,
    )
    return session.scalars(
        select(CmeCandidate)
        .where(
            CmeCandidate.status == CandidateStatus.OPEN, CmeCandidate.opened_at < opened_before, ~escalated
        )
        .order_by(CmeCandidate.opened_at, CmeCandidate.id)
    ).all()


def escalate_stale_candidates(session: Session, *, now: dt.datetime, max_age_days: int) -> list[uuid.UUID]:
    """Flag, once, every open candidate older than `max_age_days`: an `escalated` event in its history."""
    stale = stale_candidates(session, opened_before=now - dt.timedelta(days=max_age_days))
    session.add_all(
        CmeEvent(
            la_id=candidate.la_id,
            subject_type=SubjectType.CANDIDATE,
            subject_id=candidate.id,
            at=now,
            action=ESCALATED,
            fields=[f"open_longer_than_{max_age_days}_days"],
        )
        for candidate in stale
    )
    ids = [candidate.id for candidate in stale]
    if ids:
        audit.record(
            session,
            actor=None,
            action="cme.candidate.escalate",
            object_type="cme_candidate",
            object_ids=[str(candidate_id) for candidate_id in ids],
            purpose=Purpose.IDENTIFY,
            now=now,
        )
    session.flush()
    return ids


def run_daily_work(
    session: Session, *, now: dt.datetime, max_age_days: int, clocks: ClockSettings
) -> dict[str, Any]:
    """One day's work, under the daily lock so two runs can never overlap (each step is also idempotent)."""
    _lock(session)
    surfaced = cme_service.surface_due(session, now.date(), now=now, clocks=clocks)
    escalated = escalate_stale_candidates(session, now=now, max_age_days=max_age_days)
    return {"day": now.date().isoformat(), "surfaced": len(surfaced), "escalated": len(escalated)}


def run_daily(context: JobContext) -> dict[str, Any]:
    """The `cme_daily` handler: schedule tomorrow first (so a failing day does not end the chain), then work.

    The work uses the clock's date, not the job's: a run delayed past midnight catches up to today.
    """
    now = context.now()
    with context.session_factory.begin() as session:
        schedule_day(session, now.date() + dt.timedelta(days=1), now=now)
    settings = get_settings()
    with context.session_factory.begin() as session:
        return run_daily_work(
            session, now=now, max_age_days=settings.candidate_max_age_days, clocks=get_cme_settings().clocks
        )


def handlers() -> dict[str, Handler]:
    return {DAILY_KIND: run_daily}
