"""An app with one tiny authenticated route, to drive authentication through real HTTP."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import Engine

from app.core.config import Settings
from app.core.errors import Conflict
from app.main import create_app
from app.security.caller import Caller
from app.security.dependencies import authenticate
from tests.support.clock import FrozenClock

WHOAMI = "/_test/whoami"
FAILS_AFTER_AUTH = "/_test/fails"


# Authentication alone: these routes are no operation of the authorisation table (`CallerDep` would refuse
# them to everyone).
AuthenticatedDep = Annotated[Caller, Depends(authenticate)]


def add_test_routes(app: FastAPI) -> None:
    """`WHOAMI` echoes the authenticated caller; `FAILS_AFTER_AUTH` authenticates, then fails with 409."""

    @app.get(WHOAMI)
    def whoami(caller: AuthenticatedDep) -> dict[str, Any]:
        return dataclasses.asdict(caller)

    @app.post(FAILS_AFTER_AUTH)
    def fails(caller: AuthenticatedDep) -> None:
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
