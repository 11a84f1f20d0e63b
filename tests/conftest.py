"""Test fixtures: a throw-away PostgreSQL database per test session, migrated with Alembic.

Tests commit for real (idempotency, replay and all-or-nothing storage cannot be proven inside a
rolled-back transaction); every table is truncated after each test instead.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory
from app.core.migrate import upgrade
from app.main import create_app
from app.wiring.models import metadata

ADMIN_DSN = os.environ.get("CME_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")

# Code under test that reads the default settings (the app factory `cme serve` hands uvicorn, the CLI run
# in process) keeps its embedded database and service key in a directory of this run, never in the
# user's own (~/.local/share/cme-hub); removed when the run ends.
_DATA_DIR = tempfile.TemporaryDirectory(prefix="cme-test-data-")
os.environ.setdefault("CME_DATA_DIR", _DATA_DIR.name)


def _admin_execute(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"cme_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin_execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        # One clear line instead of the same connection error on every database test.
        pytest.exit(
            f"The tests need PostgreSQL at {ADMIN_DSN} ({exc.__class__.__name__}). Run them with `make test` "
            "(it starts a throwaway one when none answers: scripts/with_postgres.py), start one (on Debian: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; `bash .ci/run` does this "
            "itself) or point CME_TEST_ADMIN_DSN at one.",
            returncode=3,
        )
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("engine")
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    if tables:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    factory = make_session_factory(engine)
    with factory() as session:
        yield session


@pytest.fixture
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    key_dir = tmp_path_factory.getbasetemp() / "service-key"
    return Settings(
        database_url=database_url,
        service_key_file=key_dir / "service-signing-key.pem",
        run_worker_in_process=False,
        max_body_bytes=2 * 1024 * 1024,
        # Intake tests run on the real clock and the CME tests on 2025 dates: a window holding both.
        # tests/submissions/test_legal_window.py moves it to test the gate itself.
        legal_window_start=dt.date(2020, 1, 1),
        legal_window_end=dt.date(2100, 1, 1),
        # Each health list is matched as soon as a worker takes it (a round of the lists stored by then);
        # tests/matching/test_rounds.py sets a wait to test the rounds themselves.
        match_round_wait_seconds=0,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client
