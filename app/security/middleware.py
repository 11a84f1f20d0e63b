"""Authentication before the body (issue 11, item 2) and per-partner rate limits (item 8).

Pure ASGI middleware (BaseHTTPMiddleware would break context variables and read the body).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import ProblemError, TooManyRequests, Unauthorized, problem_response
from app.security.caller import Caller
from app.security.rate_limit import PartnerRateLimiter
from app.security.tokens import authenticate_token

logger = logging.getLogger("cme.errors")

# Where the caller authenticated here waits for the route's dependencies (`request.state`).
CALLER_STATE = "cme_caller"
# A compact JWS: three base64url segments (the signature may not be empty for any algorithm we accept).
_BEARER = re.compile(rb"Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")


def authenticated_caller(scope: Scope) -> Caller | None:
    """The caller `AuthenticateFirstMiddleware` authenticated for this request, if it did."""
    caller = scope.get("state", {}).get(CALLER_STATE)
    return caller if isinstance(caller, Caller) else None


class AuthenticateFirstMiddleware:
    """Every request to the partner API (`/v1/`) is authenticated before its body is looked at: no bearer
    token of the right shape, or one that does not verify (bad signature, unknown key, replayed jti, ...),
    is the generic 401 with `Connection: close`, and the body, however large, is never read. Then the
    partner's rate limit: beyond it, 429 with Retry-After, the body again unread.

    Authentication is the same `authenticate_token` the routes used (the jti is burned here, once); the
    caller is left in `request.state` for `app.security.dependencies.authenticate`, which the authorisation
    table (`CallerDep`) then applies per operation.
    """

    def __init__(self, app: ASGIApp, *, limiter: PartnerRateLimiter, prefix: str = "/v1/") -> None:
        self.app = app
        self.limiter = limiter
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        shaped = _BEARER.fullmatch(authorization.strip())
        try:
            if shaped is None:
                raise Unauthorized("no bearer token of the right shape")
            caller = await self._authenticate(scope, shaped.group(1).decode("ascii"))
            retry_after = self.limiter.take(caller.partner_id)
            if retry_after:
                raise TooManyRequests(
                    f"This partner's limit is {self.limiter.rate:g} requests a second; retry later.",
                    headers={"Retry-After": str(retry_after)},
                )
        except ProblemError as error:
            if isinstance(error, Unauthorized):
                logger.info("authentication failed", extra={"reason": error.reason})
            response = problem_response(
                error.status, error.slug, error.title, detail=error.detail, instance=scope["path"],
                headers={**error.headers, "Connection": "close"},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_STATE] = caller
        await self.app(scope, receive, send)

    @staticmethod
    async def _authenticate(scope: Scope, token: str) -> Caller:
        state: Any = scope["app"].state
        return await authenticate_token(
            token,
            settings=state.settings,
            now=state.clock.now(),
            burner=state.jti_burner,
            sessions=state.session_factory,
        )
