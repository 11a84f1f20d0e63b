"""Matching jobs: idempotent re-runs (also after a crash), register re-matching, concurrent workers."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.cme import candidates as cme_candidates
from app.cme.models import CmeCandidate, CmeEvent
from app.core.db import make_session_factory
from app.jobs import service as jobs_service
from app.jobs.models import Job
from app.jobs.worker import JobContext, Worker
from app.matching.models import MatchIndexGeneration, MatchOutcome, MatchRun
from app.submissions.models import HealthChild
from tests.matching.test_matching_api import TOMOS, World, count, on_roll, outcomes, send
from tests.matching.test_matching_api import world_fixture as world_fixture  # the `world` fixture
from tests.submissions.conftest import payload


def enqueue_again(session: Session, submission_id: uuid.UUID) -> uuid.UUID:
    job = jobs_service.enqueue(
        session, "match_health_list", {"submission_id": str(submission_id)}, now=dt.datetime.now(dt.UTC)
    )
    session.commit()
    return job.id


class TestIdempotence:
    def test_rerun_after_success_changes_nothing(self, world: World, session: Session) -> None:
        world.worker.run_until_idle()
        before = {i: (o.id, o.outcome) for i, o in outcomes(session, world.health_submission).items()}
        job_id = enqueue_again(session, world.health_submission)
        assert world.worker.run_until_idle() == 1

        job = session.get(Job, job_id)
        assert job is not None and job.status == "succeeded" and job.result is not None
        assert job.result["replayed"] is True
        after = {i: (o.id, o.outcome) for i, o in outcomes(session, world.health_submission).items()}
        assert after == before
        assert count(session, MatchRun, MatchRun.kind == "health_list") == 1
        assert count(session, CmeCandidate) == 1

    def test_crash_midway_leaves_nothing_and_the_retry_completes(
        self, world: World, session: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def crash(*args: object, **kwargs: object) -> list[uuid.UUID]:
            raise RuntimeError("worker died")

        with monkeypatch.context() as patch:
            patch.setattr(cme_candidates, "open_candidates", crash)
            world.worker.run_until_idle()
        session.expire_all()
        job = session.get(Job, world.health_job)
        assert job is not None and job.status == "queued" and job.attempts == 1
        assert count(session, MatchOutcome) == 0
        assert count(session, HealthChild) == 4  # nothing minimised either

        later = Worker(world.worker.session_factory, world.worker.handlers, now=lambda: job.run_after)
        assert later.run_until_idle() == 1
        assert count(session, MatchOutcome) == 4
        assert count(session, CmeCandidate) == 1
        assert count(session, MatchRun, MatchRun.kind == "health_list") == 1


class TestRematch:
    def test_register_change_bumps_generation_and_finds_open_candidates(
        self, world: World, session: Session, client: TestClient
    ) -> None:
        world.worker.run_until_idle()
        generation = session.scalar(select(MatchIndexGeneration.generation))
        candidate = session.scalars(select(CmeCandidate)).one()  # Tomos, unmatched

        roll = payload(
            world.la.id, [on_roll(TOMOS, "6602002")], kind="school_roll", recipient=None, scope="6602002"
        )
        response = send(client, world.la, roll)
        assert response.status_code == 201
        assert world.worker.run_until_idle() == 1

        session.expire_all()
        assert session.scalar(select(MatchIndexGeneration.generation)) == (generation or 0) + 1
        job = session.get(Job, uuid.UUID(response.json()["job_id"]))
        assert job is not None and job.result is not None
        assert job.result["candidates_on_register"] == 1
        assert (job.progress_done, job.progress_total) == (1, 1)
        # Handed to the CME domain: the candidate's history says so; nothing is resolved automatically.
        found = session.scalars(select(CmeEvent).where(CmeEvent.action == "found_on_register")).one()
        assert (found.subject_id, found.la_id) == (candidate.id, world.la.id)
        session.refresh(candidate)
        assert candidate.status == "open"

    def test_an_earlier_register_change_defers_to_a_queued_later_one(
        self, world: World, session: Session
    ) -> None:
        world.worker.run_until_idle()
        session.expire_all()
        rematches = session.scalars(
            select(Job).where(Job.kind == "rematch_after_register_change").order_by(Job.created_at)
        ).all()
        assert [job.status for job in rematches] == ["succeeded", "succeeded"]
        first, last = (job.result or {} for job in rematches)
        assert first.get("deferred_to_later_job") is True and "candidates_checked" not in first
        assert last["candidates_checked"] == 0 and "deferred_to_later_job" not in last
        assert last["register_generation"] == first["register_generation"] + 1


class TestConcurrentWorkers:
    def test_two_workers_never_run_the_same_job(self, engine: Engine, session: Session) -> None:
        ran: list[uuid.UUID] = []
        lock = threading.Lock()
        gate = threading.Barrier(2)

        def probe(context: JobContext) -> dict[str, object]:
            with lock:
                ran.append(context.job_id)
            return {}

        now = dt.datetime.now(dt.UTC)
        ids = [jobs_service.enqueue(session, "probe", {"n": n}, now=now).id for n in range(40)]
        session.commit()
        factory = make_session_factory(engine)
        workers = [Worker(factory, {"probe": probe}) for _ in range(2)]

        def run(worker: Worker) -> None:
            gate.wait()
            worker.run_until_idle()

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert Counter(ran) == Counter(ids)
        session.expire_all()
        assert Counter(session.scalars(select(Job.status))) == {"succeeded": 40}

    def test_two_workers_match_two_lists_once_each(
        self, world: World, session: Session, client: TestClient
    ) -> None:
        second = send(client, world.health_board, payload(world.health_board.id, [TOMOS]))
        assert second.status_code == 201
        workers = [Worker(world.worker.session_factory, world.worker.handlers) for _ in range(2)]
        threads = [threading.Thread(target=w.run_until_idle) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        # A list whose round another worker was running went back to the queue for a moment.
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
        Worker(world.worker.session_factory, world.worker.handlers, now=lambda: soon).run_until_idle()
        session.expire_all()
        assert set(session.scalars(select(Job.status))) == {"succeeded"}
        runs = session.execute(
            select(MatchRun.submission_id, MatchRun.round_id).where(MatchRun.kind == "health_list")
        ).all()
        assert Counter(r.submission_id for r in runs) == {
            world.health_submission: 1,
            uuid.UUID(second.json()["submission_id"]): 1,
        }
        assert len({r.round_id for r in runs}) == 1  # both lists were in before the round: one round
