"""Request-scoped dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings


# Dependencies that do no I/O are `async`: FastAPI then runs them in the event loop instead of handing
# each to the thread pool (a hand-off, and a wait for the GIL under load, per dependency per request).
async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's unit of work. Opening a session does no I/O, so it happens in the event loop; the
    commit (or rollback) and close, which do, take one thread-pool call together."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_roll_back_and_close, session)
        raise
    if session.in_transaction():
        await run_in_threadpool(_commit_and_close, session)
    else:  # never used (no transaction begun): closing does no I/O
        session.close()


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _roll_back_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
# scope="function": commit (or roll back) when the endpoint returns, before the response is sent, so a
# client never sees a success whose transaction then failed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
