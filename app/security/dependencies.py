"""The authentication dependency every partner-facing route uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.core.dependencies import SettingsDep
from app.core.errors import Unauthorized, problem_responses
from app.security.clock import ClockDep
from app.security.tokens import Caller, authenticate_token

__all__ = ["Caller", "CallerDep", "authenticate", "authenticated_router"]

# auto_error=False: a missing or non-Bearer header must give our problem+json 401, not FastAPI's.
_bearer = HTTPBearer(
    auto_error=False, description="A fresh JWT (typ cme-auth+jwt) signed with the partner's key."
)


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
    clock: ClockDep,
) -> Caller:
    if credentials is None:
        raise Unauthorized("no bearer token")
    # Autocommit, outside the request's transaction: the jti stays burned even if the request then fails,
    # every process sharing the database sees it at once, and the burn is a single round trip. These
    # connections do not wait for the WAL flush (synchronous_commit=off, about 4 ms per commit on the
    # project machine): a request that writes anything (every change, every audited read) commits with a
    # wait, and that flush carries the earlier burn's WAL record too, so it never answers before its jti
    # is durable. Only the burn of a request that wrote nothing (refused, or an unaudited read such as a
    # health check of a job's status) could be lost to a database crash within a fraction of a second.
    factory: sessionmaker[Session] = request.app.state.replay_session_factory
    with factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return authenticate_token(session, credentials.credentials, settings=settings, now=clock.now())


CallerDep = Annotated[Caller, Depends(authenticate)]


def authenticated_router(**kwargs: Any) -> APIRouter:
    """A router whose every route requires a valid bearer token (deny by default); 401 is documented."""
    responses = {**problem_responses(401), **kwargs.pop("responses", {})}
    return APIRouter(dependencies=[Depends(authenticate)], responses=responses, **kwargs)
