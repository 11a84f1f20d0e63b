"""The daily CME job (`cme_daily`): reg 11 clocks for children past CSA, and stale-candidate escalation.

Scheduling is a chain of jobs in the shared queue, one per date (`app.jobs.daily`): each run first
schedules the next day's job, then does its work. `tick` schedules today's job; every worker loop calls it
(at start, then once a minute, see `app.jobs.worker.Worker.tick`), so the chain starts and heals in any
deployment.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import service as audit
from app.cme import removals as cme_removals
from app.cme.clocks import ClockSettings
from app.cme.config import get_cme_settings
from app.cme.domain import CandidateStatus, Purpose, SubjectType
from app.cme.models import CmeCandidate, CmeEvent
from app.core.config import get_settings
from app.jobs import daily
from app.jobs.models import Job
from app.jobs.worker import Handler, JobContext

DAILY_KIND = "cme_daily"
ESCALATED = "escalated"
# Fixed key of the advisory lock that serialises scheduling and running of the daily job ("CMEDAY").
DAILY_LOCK_KEY = 0x43_4D_45_44_41_59


def _lock(session: Session) -> None:
    daily.lock(session, DAILY_LOCK_KEY)


def schedule_day(session: Session, day: dt.date, *, now: dt.datetime) -> Job | None:
    """Enqueue the daily job for `day` (due at its start, or now if later); None if it already exists."""
    return daily.schedule_day(session, DAILY_KIND, day, lock_key=DAILY_LOCK_KEY, now=now)


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
    surfaced = cme_removals.surface_due(session, now.date(), now=now, clocks=clocks)
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
