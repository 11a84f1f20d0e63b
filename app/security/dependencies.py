"""The authentication dependency every partner-facing route uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.dependencies import SettingsDep
from app.core.errors import Unauthorized, problem_responses
from app.security.clock import ClockDep
from app.security.tokens import Caller, authenticate_token

__all__ = ["Caller", "CallerDep", "authenticate", "authenticated_router"]

# auto_error=False: a missing or non-Bearer header must give our problem+json 401, not FastAPI's.
_bearer = HTTPBearer(
    auto_error=False, description="A fresh JWT (typ cme-auth+jwt) signed with the partner's key."
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
    clock: ClockDep,
) -> Caller:
    if credentials is None:
        raise Unauthorized("no bearer token")
    # Async: the common case (a key this process knows) verifies in the event loop and burns the jti in one
    # asynchronous round trip, outside the request's transaction (see `app.security.replay`), with no
    # thread-pool hand-off.
    return await authenticate_token(
        credentials.credentials,
        settings=settings,
        now=clock.now(),
        burner=request.app.state.jti_burner,
        sessions=request.app.state.session_factory,
    )


CallerDep = Annotated[Caller, Depends(authenticate)]


def authenticated_router(**kwargs: Any) -> APIRouter:
    """A router whose every route requires a valid bearer token (deny by default); 401 is documented."""
    responses = {**problem_responses(401), **kwargs.pop("responses", {})}
    return APIRouter(dependencies=[Depends(authenticate)], responses=responses, **kwargs)
