"""The embedded SQLite start stays usable while a matching round runs (issue 9: one writer, short writes).

A real worker thread runs the round of a list nobody in education knows (every row becomes a candidate);
meanwhile an LA officer lists candidates, the sender follows the job and a probe asks `/readyz`. Every
request is answered, and the job is seen moving through its stages.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory
from app.core.migrate import upgrade
from app.jobs.worker import BackgroundWorker, Worker
from app.main import create_app
from app.partners.models import PartnerKind
from app.synthetic.names import GIRLS, SURNAMES
from app.wiring.jobs import default_handlers
from tests.matching.test_matching_api import as_officer, send
from tests.submissions.conftest import PILOT_LA, payload
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header

ROWS = 4000
STAGES = {"load", "link", "store"}


def unknown_children(n: int) -> list[dict[str, Any]]:
    rng = random.Random(9)
    return [
        {
            "given_name": rng.choice(GIRLS),
            "family_name": rng.choice(SURNAMES),
            "date_of_birth": (dt.date(2011, 1, 1) + dt.timedelta(days=rng.randrange(1500))).isoformat(),
            "address": {"lines": [f"{i} Heol Prawf"], "town": "Llangefni", "postcode": f"LL77 {i % 9 + 1}AB"},
        }
        for i in range(n)
    ]


@pytest.fixture
def embedded(tmp_path: Path, settings: Settings) -> Iterator[tuple[TestClient, TestPartner, TestPartner]]:
    url = f"sqlite:///{tmp_path / 'cme.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        board = create_partner(session, "W11000023", PartnerKind.local_health_board)
        la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    local = settings.model_copy(update={"database_url": url, "match_round_wait_seconds": 0})
    worker = BackgroundWorker(Worker(factory, default_handlers(local), poll_seconds=0.05))
    try:
        with TestClient(create_app(local)) as client:
            worker.start()
            yield client, board, la
            worker.stop(60)
    finally:
        engine.dispose()


def test_the_api_answers_while_a_round_runs_on_sqlite(
    embedded: tuple[TestClient, TestPartner, TestPartner],
) -> None:
    client, board, la = embedded
    sent = send(client, board, payload(board.id, unknown_children(ROWS), submission_id=uuid.uuid4()))
    assert sent.status_code == 201, sent.text
    job_path = f"/v1/jobs/{sent.json()['job_id']}"
    answers: list[tuple[str, int]] = []
    seen_stages: set[str] = set()
    deadline = time.monotonic() + 120
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(job_path, headers=auth_header(board.key, board.id)).json()
        seen_stages.add(str(job.get("stage")))
        if job["status"] in ("succeeded", "failed"):
            break
        for path, headers in (("/readyz", {}), ("/v1/cme/candidates?limit=5", as_officer(la))):
            answers.append((path, client.get(path, headers=headers).status_code))
    assert job["status"] == "succeeded", job
    assert job["stage"] == "done" and job["progress_done"] == job["progress_total"] == ROWS
    # Requests were made while the round was under way, and every one was answered.
    assert seen_stages & STAGES, seen_stages
    assert answers and {status for _, status in answers} == {200}, answers
    page = client.get("/v1/cme/candidates?limit=1", headers=as_officer(la))
    assert page.status_code == 200 and page.json()["items"]
    assert job["result"]["outcomes"]["unmatched"] == ROWS


def test_readyz_says_so_when_the_sqlite_writer_is_held(
    embedded: tuple[TestClient, TestPartner, TestPartner], tmp_path: Path
) -> None:
    client, _, _ = embedded
    assert client.get("/readyz").status_code == 200
    holder = sqlite3.connect(tmp_path / "cme.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the one write lock
        busy = client.get("/readyz")
        assert busy.status_code == 503 and busy.headers["content-type"] == "application/problem+json"
        assert "busy" in busy.json()["detail"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.get("/readyz").status_code == 200


def _wait_for(client: TestClient, partner: TestPartner, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = client.get(
            f"/v1/jobs/{job_id}", headers=auth_header(partner.key, partner.id)
        ).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_a_register_change_rematches_on_sqlite(
    embedded: tuple[TestClient, TestPartner, TestPartner],
) -> None:
    # The re-match job once reported progress from inside its own write transaction: on SQLite that
    # write waited for the job's own lock until the busy timeout, five attempts, then failed.
    client, board, la = embedded
    children = unknown_children(3)
    listed = send(client, board, payload(board.id, children, submission_id=uuid.uuid4()))
    assert listed.status_code == 201, listed.text
    assert _wait_for(client, board, listed.json()["job_id"])["status"] == "succeeded"
    on_roll = {**children[0], "sex": "F", "school": {"number": "6602001", "name": "Ysgol Gynradd Synthetig"}}
    roll = send(client, la, payload(la.id, [on_roll], kind="school_roll", recipient=None))
    assert roll.status_code == 201, roll.text
    job = _wait_for(client, la, roll.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["candidates_checked"] == 3
    assert job["result"]["candidates_on_register"] == 1
