"""`GET /metrics`: the operator's Prometheus scrape (decision 0020).

Who may read: whoever presents the operator's scrape token (`CME_METRICS_TOKEN`, compared in constant
time; unset, nobody). A partner's token is authenticated and then refused by the authorisation table
(`RULES["metrics"]` lets no partner kind in): metrics describe every partner's traffic, so none may read
them. No token, or a bad one, is the generic 401. The path is outside the partner API (`/v1/`).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.core.dependencies import SettingsDep
from app.core.errors import problem_responses
from app.observability import metrics as prometheus
from app.security.clock import ClockDep
from app.security.dependencies import authenticate, authorized_caller

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="The operator's scrape token (CME_METRICS_TOKEN); no partner token is let in.",
)
router = APIRouter(tags=["operations"])


def operator_token_matches(credentials: HTTPAuthorizationCredentials | None, expected: str | None) -> bool:
    """Whether the bearer credential is the operator's scrape token; no token configured: never."""
    if not expected or credentials is None:
        return False
    return hmac.compare_digest(credentials.credentials.encode(), expected.encode())


async def require_metrics_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
    clock: ClockDep,
) -> None:
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else None
    if operator_token_matches(credentials, expected):
        return
    caller = await authenticate(request, credentials, settings, clock)  # or the generic 401
    await authorized_caller(request, caller, settings)  # no partner may: 403


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_reader)],
    responses={
        200: {
            "description": "Prometheus text exposition format (version 0.0.4).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403),
    },
)
def metrics(request: Request) -> Response:
    """Request latency by route template and status, authentication failures by reason, submissions and
    records by kind and fate, match outcomes, job durations and queue depth. No personal data in any label.
    Send `Authorization: Bearer <CME_METRICS_TOKEN>`; no partner may read them."""
    with request.app.state.session_factory() as session:
        prometheus.refresh_queue(session)
    return Response(content=prometheus.exposition(), media_type=CONTENT_TYPE_LATEST)
