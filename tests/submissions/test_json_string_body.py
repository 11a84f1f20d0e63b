"""A signed submission sent as one JSON string (`application/json`), the way a generated client sends it
(docs/clients.md): the same compact JWS, the same intake, the same receipt; `application/jose` unchanged."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from app.submissions.router import unwrap_json_string
from tests.submissions.conftest import child, payload
from tests.support.partners import TestPartner
from tests.support.tokens import auth_header, signed_body


def _post(client: TestClient, partner: TestPartner, content: bytes, content_type: str) -> httpx.Response:
    headers = {"Content-Type": content_type, **auth_header(partner.key, partner.id)}
    response: httpx.Response = client.post("/v1/submissions", content=content, headers=headers)
    return response


def test_a_json_string_is_taken_as_the_jws_it_holds(
    client: TestClient, health_board: TestPartner, pilot_la: TestPartner
) -> None:
    jws = signed_body(health_board.key, payload(health_board.id, [child()]))
    as_json = _post(client, health_board, b' \n"' + jws + b'"\n', "application/json")
    assert as_json.status_code == 201, as_json.text
    as_jose = _post(client, health_board, jws, "application/jose")
    assert as_jose.status_code == 200  # the same submission, retried
    assert as_jose.json()["submission_id"] == as_json.json()["submission_id"]


def test_json_that_is_not_a_string_is_422(client: TestClient, health_board: TestPartner) -> None:
    body = json.dumps(payload(health_board.id, [child()])).encode()  # the unsigned payload
    response = _post(client, health_board, body, "application/json")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["code"] for error in response.json()["errors"]] == ["string_type"]


def test_the_jws_itself_labelled_json_is_415_saying_how_to_label_it(
    client: TestClient, health_board: TestPartner
) -> None:
    jws = signed_body(health_board.key, payload(health_board.id, [child()]))
    response = _post(client, health_board, jws, "application/json")
    assert response.status_code == 415
    assert "application/jose" in response.json()["detail"]


def test_any_other_content_type_is_415(client: TestClient, health_board: TestPartner) -> None:
    jws = signed_body(health_board.key, payload(health_board.id, [child()]))
    response = _post(client, health_board, jws, "text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("body", "unwrapped"),
    [
        (b'"a.b.c"', b"a.b.c"),
        (b' \t"a.b.c"\r\n', b"a.b.c"),
        (b'"a\\u002eb.c"', b"a.b.c"),  # escaped: decoded as JSON
        (b'"a\\"b"', b'a"b'),
        (b'{"a": 1}', None),  # not a string: left as it is
        (b'"unterminated', None),
        (b'"a"b"', None),  # not JSON
        (b'"', None),
        (b"", None),
        (b"eyJh.eyJi.c2ln", None),
    ],
)
def test_unwrap_json_string(body: bytes, unwrapped: bytes | None) -> None:
    buffer = bytearray(body)
    assert unwrap_json_string(buffer) is (unwrapped is not None)
    assert bytes(buffer) == (body if unwrapped is None else unwrapped)
