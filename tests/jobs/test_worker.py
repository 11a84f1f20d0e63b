"""The worker loop's periodic domain work (ticks) and its job life cycle on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import make_session_factory
from app.jobs import service
from app.jobs.models import Job
from app.jobs.worker import BackgroundWorker, JobContext, Worker

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_ticks_run_at_start_then_at_most_once_a_minute(engine: Engine) -> None:
    calls: list[dt.datetime] = []

    def tick(factory: sessionmaker[Session], now: dt.datetime) -> None:
        calls.append(now)

    worker = Worker(make_session_factory(engine), {}, now=lambda: NOW, ticks=[tick])
    worker.tick()
    worker.tick()
    assert calls == [NOW]


def test_run_forever_ticks_before_it_polls(engine: Engine) -> None:
    stop = threading.Event()

    def tick(factory: sessionmaker[Session], now: dt.datetime) -> None:
        stop.set()  # proves the loop ticked; ends it

    worker = Worker(make_session_factory(engine), {}, poll_seconds=0.01, ticks=[tick])
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    thread.join(5)
    assert stop.is_set() and not thread.is_alive()


def test_a_failing_job_is_retried_with_backoff_then_marked_failed(engine: Engine, session: Session) -> None:
    def broken(context: JobContext) -> dict[str, Any]:
        raise RuntimeError("boom")

    with session.begin():
        job = service.enqueue(session, "broken", {}, now=NOW, max_attempts=2)
    clock = [NOW]
    worker = Worker(make_session_factory(engine), {"broken": broken}, now=lambda: clock[0])
    assert worker.run_once()
    session.expire_all()
    first = session.get(Job, job.id)
    assert first is not None
    assert (first.status, first.attempts, first.error) == ("queued", 1, "RuntimeError")
    assert first.run_after == NOW + dt.timedelta(seconds=2)
    assert not worker.run_once()  # not due yet
    clock[0] = first.run_after
    assert worker.run_once()
    session.expire_all()
    last = session.get(Job, job.id)
    assert last is not None and (last.status, last.attempts) == ("failed", 2)


def test_an_idle_background_worker_starts_a_job_as_soon_as_its_enqueue_commits(
    engine: Engine, session: Session
) -> None:
    ran = threading.Event()

    def handler(context: JobContext) -> dict[str, Any]:
        ran.set()
        return {}

    # A poll interval far longer than the test waits: only the wake-up can start the job in time.
    background = BackgroundWorker(Worker(make_session_factory(engine), {"wake": handler}, poll_seconds=3600))
    background.start()
    try:
        time.sleep(0.2)  # the loop has found nothing and waits
        with session.begin():
            service.enqueue(session, "wake", {}, now=dt.datetime.now(dt.UTC))
        assert ran.wait(30)
    finally:
        background.stop()


def test_a_running_jobs_lease_is_renewed_so_another_worker_cannot_take_it(
    engine: Engine, session: Session
) -> None:
    factory = make_session_factory(engine)
    heard: list[dt.datetime | None] = []

    def slow(context: JobContext) -> dict[str, Any]:
        with factory() as reading:
            first = reading.get(Job, context.job_id)
            assert first is not None
            claimed_at = first.locked_at
        time.sleep(0.5)  # several heartbeats
        with factory() as reading:
            job = reading.get(Job, context.job_id)
            assert job is not None
            heard.extend([claimed_at, job.locked_at])
        return {}

    with session.begin():
        service.enqueue(session, "slow", {}, now=dt.datetime.now(dt.UTC))
    Worker(factory, {"slow": slow}, heartbeat_seconds=0.05).run_once()
    claimed_at, renewed_at = heard
    assert claimed_at is not None and renewed_at is not None and renewed_at > claimed_at


def test_a_dead_workers_job_is_taken_over_once_its_lease_has_run_out(
    engine: Engine, session: Session
) -> None:
    factory = make_session_factory(engine)
    with session.begin():
        job = service.enqueue(session, "work", {}, now=NOW)
        assert service.claim_next(session, worker_id="dead", now=NOW, kinds=frozenset({"work"})) is not None
    ran: list[str] = []

    def work(context: JobContext) -> dict[str, Any]:
        ran.append("ran")
        return {}

    handlers = {"work": work}
    assert not Worker(factory, handlers, now=lambda: NOW + service.LEASE / 2).run_once()
    assert Worker(factory, handlers, now=lambda: NOW + service.LEASE + dt.timedelta(seconds=1)).run_once()
    session.expire_all()
    taken = session.get(Job, job.id)
    assert ran == ["ran"] and taken is not None and taken.status == "succeeded" and taken.attempts == 2
    assert dt.timedelta(minutes=1) >= service.LEASE  # a crash costs seconds, not the ten minutes it did
