"""Authenticate before reading the body (issue 11, item 2), a read timeout for slow bodies, and per-partner
rate limits (item 8), over real HTTP where only real HTTP shows it: uvicorn on loopback, a plain socket.

What each test proves is in its name: a token of the right shape that does not verify (another key's
signature, a replayed jti, a key nobody registered) is refused with 401 while the client has sent the
request's head and none of its declared 200 MB body; a body trickled in is cut off with 408; a partner over
its rate gets 429 with Retry-After, other partners do not.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.security.rate_limit import PartnerRateLimiter
from tests.support.keys import new_key
from tests.support.partners import TestPartner, create_partner
from tests.support.server import read_response, send_head, serving
from tests.support.tokens import auth_header, bearer_token

OFFICER = {"officer": {"id": "officer-1", "role": "case_officer"}}
BODY_200_MB = 200 * 1000 * 1000


@pytest.fixture
def la(session: Session) -> TestPartner:
    return create_partner(session, "W06000001")


@pytest.fixture
def port(settings: Settings, engine: Engine) -> Iterator[int]:
    slow = settings.model_copy(update={"body_read_timeout_seconds": 1.0, "max_body_bytes": 300 * 1000 * 1000})
    with serving(create_app(slow)) as port:
        yield port


def _refused_before_the_body(port: int, token: str) -> tuple[int, dict[str, str], float]:
    """POST a declared 200 MB body to /v1/match, sending only the head: the answer must come without it."""
    started = time.perf_counter()
    connection = send_head(
        port,
        "POST",
        "/v1/match",
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Length": str(BODY_200_MB),
        },
    )
    with connection:
        status, headers, body = read_response(connection)
    elapsed = time.perf_counter() - started
    assert json.loads(body)["type"] == "urn:cme-hub:problem:unauthorized"
    return status, headers, elapsed


def test_a_token_signed_by_another_key_is_refused_before_the_body(port: int, la: TestPartner) -> None:
    elapsed = []
    for _ in range(5):
        forged = bearer_token(
            new_key("ES256", la.key.kid), la.id, claims=OFFICER
        )  # the LA's kid, not its key
        status, headers, seconds = _refused_before_the_body(port, forged)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert headers["connection"] == "close"
        elapsed.append(seconds)
    # The target is 100 ms. The machine is shared with other suites (one attempt took 1.6 s while
    # they ran), so the median is held to it, and no attempt may come near reading 200 MB.
    assert sorted(elapsed)[2] < 0.1 and max(elapsed) < 5.0, elapsed


def test_a_client_pushing_its_200_mb_body_gets_401_and_little_of_it_in(port: int, la: TestPartner) -> None:
    """The client sends the body as fast as it can: the server answers and closes, and what the client got
    into the connection by then (kernel buffers included) is a few megabytes, not 200: the server's memory
    cannot have grown by more (the issue's target: < 10 MB)."""
    forged = bearer_token(new_key("ES256", la.key.kid), la.id, claims=OFFICER)
    headers = {"Authorization": f"Bearer {forged}", "Content-Length": str(BODY_200_MB)}
    connection = send_head(port, "POST", "/v1/match", {**headers, "Content-Type": "application/json"})
    pushed = 0

    def push() -> None:
        nonlocal pushed
        chunk = b"x" * 65536
        try:
            while pushed < BODY_200_MB:
                connection.sendall(chunk)
                pushed += len(chunk)
        except OSError:
            pass  # the server closed the connection

    pusher = threading.Thread(target=push)
    pusher.start()
    try:
        status, headers_in, _ = read_response(connection)
        pusher.join(30)
    finally:
        connection.close()
    assert status == 401 and headers_in["connection"] == "close"
    assert not pusher.is_alive() and pushed < 10 * 1024 * 1024, pushed


def test_a_replayed_token_is_refused_before_the_body(port: int, la: TestPartner) -> None:
    token = bearer_token(la.key, la.id, claims=OFFICER)
    connection = send_head(port, "GET", f"/v1/jobs/{uuid.uuid4()}", {"Authorization": f"Bearer {token}"})
    with connection:
        assert read_response(connection)[0] == 404  # the token was good, once
    status, _, _ = _refused_before_the_body(port, token)
    assert status == 401


def test_a_token_of_an_unregistered_key_is_refused_before_the_body(port: int, la: TestPartner) -> None:
    status, _, _ = _refused_before_the_body(port, bearer_token(new_key("ES256", "nobody"), la.id))
    assert status == 401


def test_a_valid_token_with_its_body_is_answered(port: int, la: TestPartner) -> None:
    body = json.dumps({"records": []}).encode()
    token = bearer_token(la.key, la.id, claims=OFFICER)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connection = send_head(port, "POST", "/v1/match", {**headers, "Content-Length": str(len(body))})
    with connection:
        connection.sendall(body)
        status, _, _ = read_response(connection)
    assert status == 422  # read and validated: an empty query is no query


def test_a_trickled_body_is_cut_off_with_408(port: int, la: TestPartner) -> None:
    token = bearer_token(la.key, la.id, claims=OFFICER)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Length": "1000",
    }
    started = time.perf_counter()
    connection = send_head(port, "POST", "/v1/match", headers)
    with connection:
        connection.settimeout(0.25)
        answer = None
        for _ in range(40):  # 10 bytes every 0.25 s: each read in time, the whole body never
            try:
                connection.sendall(b'{"records"'[:10])
                answer = read_response(connection)
                break
            except TimeoutError:
                continue
        assert answer is not None, "the server waited for the trickle"
    status, headers_in, body = answer
    elapsed = time.perf_counter() - started
    assert status == 408 and headers_in["connection"] == "close"
    assert json.loads(body)["type"] == "urn:cme-hub:problem:request-timeout"
    assert 1.0 <= elapsed < 3.0, elapsed  # the test server's timeout is 1 s


# --- Per-partner rate limits ----------------------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    strict = settings.model_copy(update={"rate_limit_per_second": 0.5, "rate_limit_burst": 3})
    app: FastAPI = create_app(strict)
    with TestClient(app) as client:
        yield client


def test_a_partner_over_its_rate_gets_429_with_retry_after_and_others_do_not(
    limited: TestClient, la: TestPartner, session: Session
) -> None:
    other = create_partner(session, "W06000002")
    path = f"/v1/jobs/{uuid.uuid4()}"
    for _ in range(3):  # the burst
        assert limited.get(path, headers=auth_header(la.key, la.id)).status_code == 404
    refused = limited.get(path, headers=auth_header(la.key, la.id))
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # one token at 0.5 a second
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:cme-hub:problem:too-many-requests"
    assert limited.get(path, headers=auth_header(other.key, other.id)).status_code == 404


def test_a_refused_token_does_not_spend_the_partners_allowance(limited: TestClient, la: TestPartner) -> None:
    path = f"/v1/jobs/{uuid.uuid4()}"
    forged = {"Authorization": f"Bearer {bearer_token(new_key('ES256', la.key.kid), la.id)}"}
    for _ in range(5):
        assert limited.get(path, headers=forged).status_code == 401
    assert limited.get(path, headers=auth_header(la.key, la.id)).status_code == 404


def test_a_rate_limited_request_has_its_body_left_unread(limited: TestClient, la: TestPartner) -> None:
    taken = 0

    def body() -> Iterator[bytes]:
        nonlocal taken
        for _ in range(100):
            taken += 1
            yield b"x" * 65536

    for _ in range(3):
        limited.get("/v1/statistics", headers=auth_header(la.key, la.id))
    response = limited.post("/v1/match", content=body(), headers=auth_header(la.key, la.id, claims=OFFICER))
    assert response.status_code == 429 and taken <= 1


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    limiter = PartnerRateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.take("A"), limiter.take("A"), limiter.take("A")] == [0, 0, 1]
    now[0] = 0.5  # one token back
    assert [limiter.take("A"), limiter.take("A")] == [0, 1]
    now[0] = 100.0  # never more than the burst
    assert [limiter.take("A"), limiter.take("A"), limiter.take("A")] == [0, 0, 1]
    assert PartnerRateLimiter(rate=0, burst=1).take("A") == 0  # 0: no limit
