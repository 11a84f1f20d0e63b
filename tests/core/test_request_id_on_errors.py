"""Every error response names its request: `X-Request-ID` and `request_id` in the problem body, 500s included."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from tests.support.partners import create_partner
from tests.support.tokens import auth_header

# Outside the partner API: its route fails before any credential would be looked at.
BOOM = "/test-only/boom"
# Shaped like a bearer token, but it does not verify: refused before the route.
SHAPED = {"Authorization": "Bearer aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl"}
VALID = {"Authorization": "a valid token, made per request"}


@pytest.fixture
def failing_client(app: FastAPI) -> TestClient:
    """The real app and middleware stack, plus one route that fails unexpectedly; like a server, the client
    gets the response rather than the exception."""

    def boom() -> None:
        raise RuntimeError("unexpected")

    app.add_api_route(BOOM, boom)
    return TestClient(app, raise_server_exceptions=False, headers=SHAPED)


def test_a_500_carries_the_request_id_the_client_sent(
    failing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="cme.errors"):
        response = failing_client.get(BOOM, headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json() == {
        "type": "urn:cme-hub:problem:internal-error",
        "title": "Internal server error",
        "status": 500,
        "instance": BOOM,
        "request_id": "trace-42",
        "errors": [],
    }
    [logged] = [r for r in caplog.records if r.name == "cme.errors"]
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError


def test_a_500_gets_a_generated_request_id_when_the_client_sent_none_or_a_malformed_one(
    failing_client: TestClient,
) -> None:
    for sent in ({}, {"X-Request-ID": "not valid: spaces and a colon"}):
        response = failing_client.get(BOOM, headers=sent)
        assert response.status_code == 500
        generated = response.headers["x-request-id"]
        assert str(uuid.UUID(generated)) == generated
        assert response.json()["request_id"] == generated


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/v1/cme/records", {}, 401),  # no credential: refused before the route
        ("GET", "/v1/cme/records", SHAPED, 401),  # a credential that does not verify
        ("GET", "/v1/no-such-route", VALID, 404),
        ("DELETE", "/healthz", {}, 405),
        ("POST", "/v1/submissions", VALID, 413),  # over the test settings' 2 MiB limit
    ],
)
def test_every_4xx_carries_the_request_id_in_header_and_body(
    client: TestClient, session: Session, method: str, path: str, token: dict[str, str], status: int
) -> None:
    if token is VALID:
        board = create_partner(session, "W11000029", PartnerKind.local_health_board)
        token = auth_header(board.key, board.id)
    body = b"x" * (3 * 1024 * 1024) if status == 413 else None
    response = client.request(method, path, content=body, headers={"X-Request-ID": "trace-7", **token})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "trace-7"
    assert response.json()["request_id"] == "trace-7"
