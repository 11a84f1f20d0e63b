"""Bodies are judged before they are read (issue 11, item 2): no bearer token, no body read; a JSON route's
limit is small, the submissions route's large; an oversized chunked body is a 413 like a declared one.
(A token that does not verify, and a body trickled in: `tests/security/test_authenticate_first.py`.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.support.partners import create_partner
from tests.support.tokens import auth_header

CHUNK = b"x" * (256 * 1024)
OFFICER = {"officer": {"id": "officer-1", "role": "case_officer"}}


@pytest.fixture
def token(session: Session) -> Callable[[], dict[str, str]]:
    """A fresh valid bearer token (one per request) of a pilot LA's case officer."""
    la = create_partner(session, "W06000001")
    return lambda: auth_header(la.key, la.id, claims=OFFICER)


class Body:
    """A chunked body of `chunks` chunks that counts how many the server took."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.taken = chunks, 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            self.taken += 1
            yield CHUNK


def test_without_a_bearer_token_the_body_is_not_read(client: TestClient) -> None:
    body = Body(800)  # 200 MiB if it were read
    response = client.post("/v1/match", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert body.taken <= 1  # at most the first chunk was on its way


def test_a_declared_length_over_a_json_routes_limit_is_refused_at_once(
    client: TestClient, token: Callable[[], dict[str, str]]
) -> None:
    headers = {**token(), "Content-Type": "application/json", "Content-Length": str(2 * 1024 * 1024)}
    body = Body(8)
    response = client.post("/v1/match", content=body, headers=headers)
    assert response.status_code == 413 and body.taken <= 1
    assert response.json()["type"] == "urn:cme-hub:problem:payload-too-large"


def test_an_oversized_chunked_body_on_a_json_route_is_413_not_400(
    client: TestClient, token: Callable[[], dict[str, str]]
) -> None:
    response = client.post(
        "/v1/match", content=Body(8), headers={**token(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:cme-hub:problem:payload-too-large"


def test_the_submissions_route_takes_more_than_a_json_route(
    client: TestClient, token: Callable[[], dict[str, str]]
) -> None:
    # 1.5 MiB: over the JSON routes' 1 MiB, under the test settings' 2 MiB for submissions. The body is no
    # JWS, so intake refuses it; what matters is that it was read whole, not refused for its size.
    body = Body(6)
    response = client.post(
        "/v1/submissions", content=body, headers={**token(), "Content-Type": "application/jose"}
    )
    assert response.status_code != 413 and response.status_code < 500 and body.taken == 6
    assert client.post("/v1/match", content=Body(6), headers=token()).status_code == 413
