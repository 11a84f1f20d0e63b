"""Fair job order across LAs (issue 11, item 7), on PostgreSQL: one LA's flood of jobs cannot starve
another LA's job, whether one worker takes them in turn or several take them at once."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.db import make_session_factory
from app.jobs import service
from app.jobs.worker import JobContext, Worker

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
KINDS = frozenset({"work"})
FLOODER, OTHER, THIRD = "W06000011", "W06000012", "W06000013"


def _enqueue(session: Session, tenant: str | None, count: int, *, at: dt.datetime) -> list[uuid.UUID]:
    with session.begin():
        return [
            service.enqueue(
                session,
                "work",
                {"n": i},
                now=at + dt.timedelta(milliseconds=i),  # in order within the tenant
                visible_to=[] if tenant is None else ["W7B000", tenant],
            ).id
            for i in range(count)
        ]


def test_one_worker_goes_round_the_las_instead_of_draining_the_flood_first(
    engine: Engine, session: Session
) -> None:
    flood = _enqueue(session, FLOODER, 20, at=NOW)
    other = _enqueue(session, OTHER, 2, at=NOW + dt.timedelta(seconds=1))
    third = _enqueue(session, THIRD, 1, at=NOW + dt.timedelta(seconds=2))
    order: list[uuid.UUID] = []

    def work(context: JobContext) -> dict[str, Any]:
        order.append(context.job_id)
        return {}

    clock = [NOW + dt.timedelta(minutes=1)]

    def now() -> dt.datetime:
        clock[0] += dt.timedelta(seconds=1)  # each claim a little later than the last
        return clock[0]

    Worker(make_session_factory(engine), {"work": work}, now=now).run_until_idle()
    assert len(order) == 23
    # The flood's first job, then each other LA's, then the flood's second, the other's second...
    assert order[:5] == [flood[0], other[0], third[0], flood[1], other[1]]
    assert order[5:] == flood[2:]


def test_workers_running_a_las_job_take_another_las_job_next(engine: Engine, session: Session) -> None:
    flood = _enqueue(session, FLOODER, 10, at=NOW)
    other = _enqueue(session, OTHER, 1, at=NOW + dt.timedelta(seconds=5))
    at = NOW + dt.timedelta(minutes=1)
    with session.begin():  # a worker holds the flood's first job, still running
        first = service.claim_next(session, worker_id="a", now=at, kinds=KINDS)
        assert first is not None and first.id == flood[0]
    with session.begin():
        second = service.claim_next(session, worker_id="b", now=at, kinds=KINDS)
        assert second is not None and second.id == other[0]
    with session.begin():  # nobody else waits: the flood goes on
        third = service.claim_next(session, worker_id="c", now=at, kinds=KINDS)
        assert third is not None and third.id == flood[1]


def test_concurrent_claims_never_take_one_job_twice(engine: Engine, session: Session) -> None:
    _enqueue(session, FLOODER, 6, at=NOW)
    _enqueue(session, OTHER, 2, at=NOW)
    factory = make_session_factory(engine)
    at = NOW + dt.timedelta(minutes=1)
    holders = [factory() for _ in range(4)]
    try:
        claimed = []
        for index, holder in enumerate(holders):  # four transactions open at once, each holding its claim
            holder.begin()
            job = service.claim_next(holder, worker_id=f"w{index}", now=at, kinds=KINDS)
            assert job is not None
            claimed.append(job.id)
        assert len(set(claimed)) == 4
        for holder in holders:
            holder.commit()
    finally:
        for holder in holders:
            holder.close()


def test_the_services_own_jobs_come_first(engine: Engine, session: Session) -> None:
    _enqueue(session, FLOODER, 3, at=NOW)
    [daily] = _enqueue(session, None, 1, at=NOW + dt.timedelta(seconds=30))
    with session.begin():
        job = service.claim_next(session, worker_id="a", now=NOW + dt.timedelta(minutes=1), kinds=KINDS)
        assert job is not None and job.id == daily
