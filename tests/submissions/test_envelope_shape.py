"""What intake tells an authenticated sender whose body is not a compact JWS at all, or whose payload leaves
out the recipient it must name (issue 12, item 2): a 400 or 422 saying so, never the generic 401 or a 403."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.jose_adapter import compact_shape_problem, strip_surrounding_whitespace
from app.submissions.models import Submission
from tests.submissions.conftest import child, payload, pupil
from tests.submissions.test_intake import JOSE, count, send
from tests.support.partners import TestPartner
from tests.support.tokens import auth_header, signed_body


@pytest.mark.parametrize(
    "surrounding",
    [(b"", b"\n"), (b"", b"\r\n"), (b"\n  ", b" \t\n\n"), (b" ", b"")],
    ids=["newline", "crlf", "both-sides", "leading-space"],
)
def test_whitespace_around_the_jws_is_tolerated(
    client: TestClient,
    session: Session,
    health_board: TestPartner,
    pilot_la: TestPartner,
    surrounding: tuple[bytes, bytes],
) -> None:
    body = signed_body(health_board.key, payload(health_board.id, [child()]))
    response = send(client, health_board, surrounding[0] + body + surrounding[1])
    assert response.status_code == 201, response.text
    assert count(session, Submission) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        json.dumps(payload("W11000023", [child()])).encode(),  # the unsigned JSON file
        b"not a jws at all",
        b"abc.def",  # two segments
        b"{}.e30.c2ln",  # a header segment that is not base64url
        b"eyJhbGciOiJFUzI1NiJ9.e30.",  # no signature segment
        b"eyJhbGciOiJFUzI1NiJ9.e30.sig nature",
    ],
    ids=[
        "empty",
        "only-newline",
        "unsigned-json",
        "text",
        "two-segments",
        "json-header",
        "no-sig",
        "sig-space",
    ],
)
def test_a_body_that_is_not_a_compact_jws_gets_400_saying_so(
    client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner, body: bytes
) -> None:
    response = send(client, health_board, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:cme-hub:problem:not-compact-jws"
    assert "compact JWS" in problem["detail"]
    assert count(session, Submission) == 0


def test_a_jws_shaped_body_that_fails_verification_is_still_the_generic_401(
    client: TestClient, session: Session, health_board: TestPartner, gp_practice: TestPartner
) -> None:
    signed = signed_body(gp_practice.key, payload(health_board.id, [child()]))
    tampered = signed[:-4] + (b"AAAA" if not signed.endswith(b"AAAA") else b"BBBB")
    response = send(client, health_board, tampered)
    assert response.status_code == 401
    assert response.json()["type"] == "urn:cme-hub:problem:unauthorized"


def test_without_a_valid_token_the_shape_is_never_looked_at(
    client: TestClient, health_board: TestPartner
) -> None:
    response = client.post("/v1/submissions", content=b"{}", headers=JOSE)
    assert response.status_code == 401
    bad_token = auth_header(health_board.key, health_board.id, claims={"aud": "someone-else"})
    response = client.post("/v1/submissions", content=b"{}", headers={**JOSE, **bad_token})
    assert response.status_code == 401
    assert response.json()["type"] == "urn:cme-hub:problem:unauthorized"


@pytest.mark.parametrize(
    ("sender_fixture", "kind"),
    [
        ("health_board", "health_register"),
        ("gp_practice", "health_register"),
        ("independent_school", "school_roll"),
    ],
)
def test_a_missing_recipient_is_a_422_naming_the_field(
    request: pytest.FixtureRequest, client: TestClient, session: Session, sender_fixture: str, kind: str
) -> None:
    sender: TestPartner = request.getfixturevalue(sender_fixture)
    request.getfixturevalue("pilot_la")
    record = pupil() if kind == "school_roll" else child()
    response = send(client, sender, payload(sender.id, [record], kind=kind, recipient=None))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:cme-hub:problem:invalid-submission"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("recipient", "missing")]
    assert count(session, Submission) == 0


def test_a_sender_that_may_not_send_the_kind_at_all_is_still_refused_with_403(
    client: TestClient, session: Session, pilot_la: TestPartner
) -> None:
    response = send(client, pilot_la, payload(pilot_la.id, [child()], recipient=None))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:cme-hub:problem:route-not-allowed"


def test_stripping_trims_a_bytearray_in_place() -> None:
    body = bytearray(b"\r\n a.b.c \n")
    assert strip_surrounding_whitespace(body) is body and body == b"a.b.c"
    assert strip_surrounding_whitespace(b"  x.y.z\n") == b"x.y.z"
    assert compact_shape_problem(bytearray(b"eyJ9.e30.c2ln")) is None
