"""An app with one tiny authenticated route, to drive authentication through real HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from app.core.config import Settings
from app.main import create_app
from app.security.dependencies import CallerDep
from tests.support.clock import FrozenClock

WHOAMI = "/_test/whoami"


def add_whoami_route(app: FastAPI) -> None:
    @app.get(WHOAMI)
    def whoami(caller: CallerDep) -> dict[str, Any]:
        return dataclasses.asdict(caller)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    app = create_app(settings)
    add_whoami_route(app)
    return app


@pytest.fixture
def clock(app: FastAPI) -> FrozenClock:
    """Freeze the app's clock at the current second."""
    frozen = FrozenClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    app.state.clock = frozen
    return frozen
