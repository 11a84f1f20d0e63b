"""An app with one tiny authenticated route, to drive authentication through real HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from app.core.config import Settings
from app.core.errors import Conflict
from app.main import create_app
from app.security.dependencies import CallerDep
from tests.support.clock import FrozenClock

WHOAMI = "/_test/whoami"
FAILS_AFTER_AUTH = "/_test/fails"


def add_test_routes(app: FastAPI) -> None:
    """`WHOAMI` echoes the authenticated caller; `FAILS_AFTER_AUTH` authenticates, then fails with 409."""

    @app.get(WHOAMI)
    def whoami(caller: CallerDep) -> dict[str, Any]:
        return dataclasses.asdict(caller)

    @app.post(FAILS_AFTER_AUTH)
    def fails(caller: CallerDep) -> None:
        raise Conflict("the request failed after authentication")


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings)
    add_test_routes(app)
    return app


@pytest.fixture
def clock(app: FastAPI) -> FrozenClock:
    """Freeze the app's clock at the current second."""
    frozen = FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    app.state.clock = frozen
    return frozen
