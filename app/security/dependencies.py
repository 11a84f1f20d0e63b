"""The authentication dependency every partner-facing route uses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.dependencies import SettingsDep
from app.core.errors import Unauthorized, problem_responses
from app.security.authorization import authorize
from app.security.caller import Caller
from app.security.clock import ClockDep
from app.security.middleware import authenticated_caller
from app.security.tokens import authenticate_token

__all__ = ["Caller", "CallerDep", "authenticate", "authenticated_router", "authorized_caller"]

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
    authenticated = authenticated_caller(request.scope)
    if authenticated is not None:  # every /v1/ request: before its body was read
        return authenticated
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


async def authorized_caller(
    request: Request, caller: Annotated[Caller, Depends(authenticate)], settings: SettingsDep
) -> Caller:
    """The authenticated caller, if `app.security.authorization.RULES` lets it use this route's operation
    (an operation without a row: nobody); else 403, or 404 where the rule says."""
    route = request.scope.get("route")
    operation_id = route.operation_id if isinstance(route, APIRoute) else None
    authorize(caller, operation_id, pilot_las=settings.pilot_las)
    return caller


# Every partner-facing route takes its caller from here: authenticated, then authorised by the table.
CallerDep = Annotated[Caller, Depends(authorized_caller)]


def authenticated_router(**kwargs: Any) -> APIRouter:
    """A router whose every route requires a valid bearer token and a row in the authorisation table that
    lets the caller in (deny by default); 401 and 403 are documented."""
    responses = {**problem_responses(401, 403), **kwargs.pop("responses", {})}
    return APIRouter(dependencies=[Depends(authorized_caller)], responses=responses, **kwargs)
