"""Request-scoped dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import session_scope


# Dependencies that do no I/O are `async`: FastAPI then runs them in the event loop instead of handing
# each to the thread pool (a hand-off, and a wait for the GIL under load, per dependency per request).
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    yield from session_scope(request.app.state.session_factory)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": commit (or roll back) when the endpoint returns, before the response is sent, so a
# client never sees a success whose transaction then failed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
