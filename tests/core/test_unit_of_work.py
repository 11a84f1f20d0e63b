"""`in_one_thread_call`: an async endpoint's blocking work and the session's commit share one thread-pool
call; a failure rolls everything back through the session dependency."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from app.core.db import make_session_factory
from app.core.dependencies import SessionDep, in_one_thread_call


@pytest.fixture
def probe_table(engine: Engine) -> Iterator[str]:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE uow_probe (value text NOT NULL)"))
    yield "uow_probe"
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE uow_probe"))


def _stored(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT value FROM uow_probe ORDER BY value")).scalars())


@pytest.fixture
def app(engine: Engine, probe_table: str) -> FastAPI:
    app = FastAPI()
    app.state.session_factory = make_session_factory(engine)
    app.state.threads = {}

    @event.listens_for(app.state.session_factory, "after_commit")
    def _committed(session: Session) -> None:
        app.state.threads["commit"] = threading.get_ident()

    def store(session: Session, value: str) -> dict[str, str]:
        app.state.threads["work"] = threading.get_ident()
        session.execute(text("INSERT INTO uow_probe (value) VALUES (:value)"), {"value": value})
        if value == "boom":
            raise RuntimeError("failed after writing")
        return {"stored": value}

    @app.post("/store/{value}")
    async def store_endpoint(value: str, session: SessionDep) -> dict[str, str]:
        return await in_one_thread_call(session, lambda: store(session, value))

    return app


def test_work_and_commit_run_in_one_thread_and_the_row_is_stored(app: FastAPI, engine: Engine) -> None:
    with TestClient(app) as client:
        assert client.post("/store/kept").json() == {"stored": "kept"}
    assert _stored(engine) == ["kept"]
    assert app.state.threads["work"] == app.state.threads["commit"] != threading.get_ident()


def test_a_failure_in_the_work_leaves_nothing_stored(app: FastAPI, engine: Engine) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/store/boom").status_code == 500
        assert "commit" not in app.state.threads
        assert client.post("/store/after").status_code == 200
    assert _stored(engine) == ["after"]
