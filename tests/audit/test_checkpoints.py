"""Daily signed audit checkpoints (decision 0007): taken once a day, kept in the table and out of the
database as a file never overwritten, verifiable with the service JWKS, read by the DPO only (audited)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from app.audit import checkpoints
from app.audit import service as audit
from app.audit.models import AuditCheckpoint, AuditEvent
from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs.models import Job
from app.jobs.worker import Worker
from app.partners import service as partners_service
from app.partners.models import PartnerKind
from app.partners.schemas import PartnerCreate
from app.security.service_key import load_or_create_service_signer
from tests.audit.conftest import write_events
from tests.cme.conftest import FROZEN_AT, HEALTH_BOARD, KEYS_VALID_FROM, LA_A, LA_B
from tests.support.clock import FrozenClock
from tests.support.jws import verify_service_jws
from tests.support.partners import PILOT_LAS, register_test_key
from tests.support.tokens import auth_header

URL = "/v1/audit/checkpoints"
DPO = "data_protection_officer"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "worm"
    directory.mkdir()
    return directory


@pytest.fixture
def settings(settings: Settings, checkpoint_dir: Path) -> Settings:
    return settings.model_copy(update={"audit_checkpoint_dir": checkpoint_dir})


def _worker(engine: Engine, settings: Settings, at: dt.datetime) -> Worker:
    return Worker(
        make_session_factory(engine), checkpoints.handlers(settings), now=lambda: at, ticks=[checkpoints.tick]
    )


def _run_day(engine: Engine, settings: Settings, at: dt.datetime) -> int:
    """What a worker process does: its tick makes sure the day's job exists, then it runs what is due."""
    worker = _worker(engine, settings, at)
    worker.tick()
    return worker.run_until_idle()


def _stored(session: Session) -> list[AuditCheckpoint]:
    session.expire_all()
    return list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.day)))


def _jobs(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    jobs = session.scalars(
        select(Job).where(Job.kind == checkpoints.CHECKPOINT_KIND).order_by(Job.run_after)
    ).all()
    return [(job.payload["day"], job.status) for job in jobs]


def _verify_with_jwks(client: TestClient, jws: str) -> dict[str, Any]:
    """Check the checkpoint's signature independently, with the published JWKS; return its claims."""
    return verify_service_jws(client, jws, audit.CHECKPOINT_TYP)


class TestOncePerDay:
    def test_the_daily_job_takes_one_checkpoint_however_often_it_runs(
        self, session: Session, engine: Engine, settings: Settings
    ) -> None:
        assert _run_day(engine, settings, FROZEN_AT) == 1
        assert _run_day(engine, settings, FROZEN_AT + dt.timedelta(hours=3)) == 0  # the tick adds nothing
        assert [row.day for row in _stored(session)] == [FROZEN_AT.date()]
        # The run chained tomorrow's job, which takes tomorrow's checkpoint.
        assert _jobs(session) == [("2025-10-06", "succeeded"), ("2025-10-07", "queued")]
        assert _run_day(engine, settings, FROZEN_AT + dt.timedelta(days=1)) == 1
        assert [row.day for row in _stored(session)] == [FROZEN_AT.date(), FROZEN_AT.date() + dt.timedelta(1)]

    def test_a_second_run_the_same_day_keeps_the_first_checkpoint(
        self, session: Session, engine: Engine, settings: Settings
    ) -> None:
        signer = load_or_create_service_signer(settings.service_key_file)
        factory = make_session_factory(engine)
        with factory.begin() as first:
            taken, created = checkpoints.take_daily_checkpoint(first, signer, now=FROZEN_AT)
            jws = taken.jws
        assert created
        write_events(session, 2, at=FROZEN_AT)
        with factory.begin() as second:
            again, created = checkpoints.take_daily_checkpoint(second, signer, now=FROZEN_AT.replace(hour=23))
            assert (created, again.jws, again.seq) == (False, jws, 0)
        assert len(_stored(session)) == 1

    def test_two_workers_together_make_one_job_and_one_checkpoint(
        self, session: Session, engine: Engine, settings: Settings
    ) -> None:
        workers = [_worker(engine, settings, FROZEN_AT) for _ in range(2)]
        barrier = threading.Barrier(2)
        ran: list[int] = []

        def work(worker: Worker) -> None:
            barrier.wait()
            worker.tick()
            ran.append(worker.run_until_idle())

        threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(ran) == 1
        assert _jobs(session) == [("2025-10-06", "succeeded"), ("2025-10-07", "queued")]
        assert len(_stored(session)) == 1

    def test_two_takers_at_the_same_moment_make_one_checkpoint(
        self, session: Session, engine: Engine, settings: Settings
    ) -> None:
        """The lock and the day key hold without the job queue's SKIP LOCKED (e.g. a job taken over)."""
        signer = load_or_create_service_signer(settings.service_key_file)
        factory = make_session_factory(engine)
        barrier = threading.Barrier(2)
        results: list[tuple[str, bool]] = []

        def take() -> None:
            barrier.wait()
            with factory.begin() as own:
                row, created = checkpoints.take_daily_checkpoint(own, signer, now=FROZEN_AT)
                results.append((row.jws, created))

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(created for _, created in results) == [False, True]
        assert len({jws for jws, _ in results}) == 1
        assert len(_stored(session)) == 1


class TestSignedHead:
    def test_the_stored_jws_verifies_with_the_service_jwks_and_names_the_chain_head(
        self, session: Session, engine: Engine, settings: Settings, client: TestClient
    ) -> None:
        write_events(session, 3, at=FROZEN_AT)
        _run_day(engine, settings, FROZEN_AT)
        (row,) = _stored(session)
        head = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        claims = _verify_with_jwks(client, row.jws)
        assert claims == {"seq": 3, "hash": head.hash, "signed_at": FROZEN_AT.isoformat()}
        assert (row.seq, row.hash, row.signed_at) == (3, head.hash, FROZEN_AT)
        assert audit.verify_chain(session).ok
        assert audit.check_head(session, seq=row.seq, hash=row.hash)["ok"]

    def test_the_stored_checkpoint_catches_deleted_newest_events(
        self, session: Session, engine: Engine, settings: Settings, superuser: Session
    ) -> None:
        write_events(session, 3, at=FROZEN_AT)
        _run_day(engine, settings, FROZEN_AT)
        (row,) = _stored(session)
        superuser.execute(text("DELETE FROM audit_event WHERE seq >= 2"))
        superuser.commit()
        assert audit.verify_chain(session).ok  # the chain alone cannot tell
        found = audit.check_head(session, seq=row.seq, hash=row.hash)
        # Events 2 and 3 are gone: the first missing one is named, as `cme audit verify` reports it.
        assert (found["first_bad_seq"], found["finding"]) == (2, "truncated")


class TestFileCopy:
    def test_the_checkpoint_is_written_to_the_directory_once(
        self, session: Session, engine: Engine, settings: Settings, checkpoint_dir: Path
    ) -> None:
        _run_day(engine, settings, FROZEN_AT)
        (row,) = _stored(session)
        path = checkpoint_dir / "audit-checkpoint-2025-10-06.jws"
        assert sorted(p.name for p in checkpoint_dir.iterdir()) == [path.name]  # no temporary file left
        assert path.read_text() == row.jws + "\n"
        # A retried job finds the same checkpoint already there: nothing written, nothing failed.
        assert not checkpoints.write_file(checkpoint_dir, row.day, row.jws)
        assert path.read_text() == row.jws + "\n"

    def test_an_existing_file_is_never_overwritten(
        self, session: Session, engine: Engine, settings: Settings, checkpoint_dir: Path
    ) -> None:
        path = checkpoint_dir / "audit-checkpoint-2025-10-06.jws"
        path.write_text("kept elsewhere\n")
        worker = _worker(engine, settings, FROZEN_AT)
        worker.tick()
        worker.run_until_idle()
        assert path.read_text() == "kept elsewhere\n"
        # The row is kept; the job says what went wrong and is retried (then failed) instead of succeeding.
        assert [row.day for row in _stored(session)] == [FROZEN_AT.date()]
        today = session.scalars(
            select(Job).where(Job.kind == checkpoints.CHECKPOINT_KIND).order_by(Job.run_after)
        ).first()
        assert today is not None and (today.status, today.error) == ("queued", "CheckpointFileConflict")
        with pytest.raises(checkpoints.CheckpointFileConflict):
            checkpoints.write_file(checkpoint_dir, FROZEN_AT.date(), _stored(session)[0].jws)
        assert sorted(p.name for p in checkpoint_dir.iterdir()) == [path.name]

    def test_no_directory_no_file(self, session: Session, engine: Engine, settings: Settings) -> None:
        directory = settings.audit_checkpoint_dir
        assert directory is not None
        _run_day(engine, settings.model_copy(update={"audit_checkpoint_dir": None}), FROZEN_AT)
        assert len(_stored(session)) == 1
        assert list(directory.iterdir()) == []


@pytest.fixture
def headers(session: Session, app: FastAPI) -> Headers:
    clock = FrozenClock(FROZEN_AT)
    app.state.clock = clock
    keys = {}
    for partner_id, kind in (
        (LA_A, PartnerKind.local_authority),
        (LA_B, PartnerKind.local_authority),
        (HEALTH_BOARD, PartnerKind.local_health_board),
    ):
        partners_service.create_partner(
            session, PartnerCreate(id=partner_id, kind=kind, name="Test partner"), pilot_las=PILOT_LAS,
            now=FROZEN_AT,
        )  # fmt: skip
        session.commit()
        keys[partner_id] = register_test_key(session, partner_id, not_before=KEYS_VALID_FROM)

    def make(partner_id: str = LA_A, role: str | None = DPO) -> dict[str, str]:
        claims = {"officer": {"id": "officer-1", "role": role}} if role else {}
        return auth_header(keys[partner_id], partner_id, now=clock.now(), claims=claims)

    return make


class TestEndpoint:
    def _three_days(self, engine: Engine, settings: Settings) -> None:
        for days in range(3):
            _run_day(engine, settings, FROZEN_AT - dt.timedelta(days=days))

    def _reads(self, session: Session) -> list[AuditEvent]:
        session.expire_all()
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.checkpoint.list")))

    def test_the_dpo_reads_the_checkpoints_newest_first_page_by_page(
        self, session: Session, engine: Engine, settings: Settings, client: TestClient, headers: Headers
    ) -> None:
        self._three_days(engine, settings)
        first = client.get(URL, params={"limit": 2}, headers=headers())
        assert first.status_code == 200, first.text
        body = first.json()
        assert [item["day"] for item in body["items"]] == ["2025-10-06", "2025-10-05"]
        stored = {row.day.isoformat(): row for row in _stored(session)}
        for item in body["items"]:
            row = stored[item["day"]]
            assert (item["seq"], item["hash"], item["jws"]) == (row.seq, row.hash, row.jws)
            assert dt.datetime.fromisoformat(item["signed_at"]) == row.signed_at
            assert _verify_with_jwks(client, item["jws"])["hash"] == row.hash
        second = client.get(URL, params={"limit": 2, "cursor": body["next_cursor"]}, headers=headers(LA_B))
        assert second.status_code == 200, second.text
        assert [item["day"] for item in second.json()["items"]] == ["2025-10-04"]
        assert second.json()["next_cursor"] is None

    def test_the_read_is_audited(
        self, session: Session, engine: Engine, settings: Settings, client: TestClient, headers: Headers
    ) -> None:
        self._three_days(engine, settings)
        assert client.get(URL, headers=headers()).status_code == 200
        (event,) = self._reads(session)
        assert (event.partner_id, event.officer_id, event.role) == (LA_A, "officer-1", DPO)
        assert (event.object_type, event.purpose) == ("audit_checkpoint", checkpoints.PURPOSE)
        assert event.object_ids == ["2025-10-06", "2025-10-05", "2025-10-04"]
        assert audit.verify_chain(session).ok

    @pytest.mark.parametrize(
        ("partner_id", "role"),
        [(LA_A, "case_officer"), (LA_A, "designated_officer"), (LA_A, "statistics"), (LA_A, None),
         (HEALTH_BOARD, None)],
    )  # fmt: skip
    def test_everyone_else_gets_403_and_nothing_is_audited(
        self,
        session: Session,
        engine: Engine,
        settings: Settings,
        client: TestClient,
        headers: Headers,
        partner_id: str,
        role: str | None,
    ) -> None:
        self._three_days(engine, settings)
        response = client.get(URL, headers=headers(partner_id, role))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        # Refused by the authorisation table (decision: one table for every route, issue 11 item 1), before
        # the checkpoints' own data-protection-officer check is reached.
        assert response.json()["type"] == "urn:cme-hub:problem:operation-not-allowed"
        assert "jws" not in response.text
        assert self._reads(session) == []

    def test_no_token_401_and_a_forged_cursor_400(self, client: TestClient, headers: Headers) -> None:
        assert client.get(URL).status_code == 401
        response = client.get(URL, params={"cursor": "not-a-cursor"}, headers=headers())
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
