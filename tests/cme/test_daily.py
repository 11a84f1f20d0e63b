"""The daily CME job: reg 11 clocks (R11.2), stale-candidate escalation, once per day however many workers."""

from __future__ import annotations

import datetime as dt
import threading

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme import scheduler
from app.cme.models import CmeDuty, CmeEvent
from app.cme.removal import RemovalGround
from app.core.db import make_session_factory
from app.jobs.models import Job
from app.jobs.worker import Worker
from app.wiring.jobs import default_handlers
from tests.cme.conftest import FROZEN_AT, LA_A, Headers, child, make_record, open_candidates

# Born 1 Oct 2009: turns 16 in the 2025/26 school year, so compulsory school age ends on the last Friday
# of June 2026 (26 June); the first day above it is Saturday 27 June 2026.
DOB_LEAVING_2026 = dt.date(2009, 10, 1)
LAST_DAY_OF_CSA = dt.datetime(2026, 6, 26, 23, 0, tzinfo=dt.UTC)
FIRST_DAY_ABOVE_CSA = dt.datetime(2026, 6, 27, 0, 30, tzinfo=dt.UTC)


def _worker(engine: Engine, at: dt.datetime) -> Worker:
    return Worker(make_session_factory(engine), default_handlers(), now=lambda: at)


def _run_day(engine: Engine, at: dt.datetime) -> int:
    """What a worker process does on a day: make sure the day's job exists, then run what is due."""
    worker = _worker(engine, at)
    scheduler.tick(worker.session_factory, now=at)
    return worker.run_until_idle()


def _reg11_duties(session: Session) -> list[CmeDuty]:
    session.expire_all()
    ground = RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE
    return list(session.scalars(select(CmeDuty).where(CmeDuty.ground == ground)))


def _daily_jobs(session: Session) -> list[Job]:
    session.expire_all()
    return list(session.scalars(select(Job).where(Job.kind == scheduler.DAILY_KIND).order_by(Job.run_after)))


class TestReg11:
    def test_the_clock_starts_on_the_first_day_above_compulsory_school_age(
        self, session: Session, client: TestClient, headers: Headers, engine: Engine
    ) -> None:
        record_id = make_record(session, client, headers, dob=DOB_LEAVING_2026)

        assert _run_day(engine, LAST_DAY_OF_CSA) == 1
        assert _reg11_duties(session) == []

        assert _run_day(engine, FIRST_DAY_ABOVE_CSA) == 1
        duties = _reg11_duties(session)
        assert duties and {str(duty.record_id) for duty in duties} == {record_id}
        assert {duty.regulation for duty in duties} == {11}

    def test_a_later_day_does_not_start_the_clock_again(
        self, session: Session, client: TestClient, headers: Headers, engine: Engine
    ) -> None:
        make_record(session, client, headers, dob=DOB_LEAVING_2026)
        _run_day(engine, FIRST_DAY_ABOVE_CSA)
        first = {duty.id for duty in _reg11_duties(session)}
        _run_day(engine, FIRST_DAY_ABOVE_CSA + dt.timedelta(days=1))
        assert {duty.id for duty in _reg11_duties(session)} == first


class TestOncePerDay:
    def test_two_workers_scheduling_together_make_one_job_and_run_it_once(
        self, session: Session, engine: Engine
    ) -> None:
        at = FROZEN_AT
        workers = [_worker(engine, at) for _ in range(2)]
        barrier = threading.Barrier(2)

        def tick(worker: Worker) -> None:
            barrier.wait()
            scheduler.tick(worker.session_factory, now=at)

        threads = [threading.Thread(target=tick, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(worker.run_until_idle() for worker in workers) == 1
        jobs = _daily_jobs(session)
        # Today's job ran; it scheduled tomorrow's, due at the start of tomorrow.
        assert [(job.payload["day"], job.status) for job in jobs] == [
            ("2025-10-06", "succeeded"),
            ("2025-10-07", "queued"),
        ]
        assert jobs[1].run_after == dt.datetime(2025, 10, 7, tzinfo=dt.UTC)

    def test_the_chain_runs_the_next_day_once_and_ticks_add_nothing(
        self, session: Session, engine: Engine
    ) -> None:
        _run_day(engine, FROZEN_AT)
        next_day = FROZEN_AT + dt.timedelta(days=1)
        assert sum(_run_day(engine, next_day) for _ in range(2)) == 1
        assert sum(_run_day(engine, FROZEN_AT + dt.timedelta(hours=3)) for _ in range(2)) == 0
        days = [job.payload["day"] for job in _daily_jobs(session)]
        assert days == ["2025-10-06", "2025-10-07", "2025-10-08"]


class TestStaleCandidates:
    def _escalations(self, session: Session) -> list[CmeEvent]:
        session.expire_all()
        return list(session.scalars(select(CmeEvent).where(CmeEvent.action == scheduler.ESCALATED)))

    def test_an_open_candidate_past_the_maximum_age_is_escalated_once(
        self, session: Session, engine: Engine
    ) -> None:
        (stale,) = open_candidates(session, LA_A, [child()])
        (fresh,) = open_candidates(session, LA_A, [child(given="Gwen")], now=FROZEN_AT + dt.timedelta(days=5))

        _run_day(engine, FROZEN_AT + dt.timedelta(days=30, minutes=-1))
        assert self._escalations(session) == []

        _run_day(engine, FROZEN_AT + dt.timedelta(days=30, minutes=1))
        _run_day(engine, FROZEN_AT + dt.timedelta(days=31, minutes=1))
        escalated = self._escalations(session)
        assert [event.subject_id for event in escalated] == [stale]
        assert fresh not in {event.subject_id for event in escalated}
        audited = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "cme.candidate.escalate")
        )
        assert audited == 1

    def test_a_decided_candidate_is_not_escalated(
        self, session: Session, client: TestClient, headers: Headers, engine: Engine
    ) -> None:
        make_record(session, client, headers)
        _run_day(engine, FROZEN_AT + dt.timedelta(days=60))
        assert self._escalations(session) == []
