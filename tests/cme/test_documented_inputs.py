"""What the OpenAPI document says about inputs is what the service does (issue 12, item 1).

- A date is YYYY-MM-DD and nothing else: `?before=0` is not 1970-01-01, a number not seconds since 1970.
- Text is stripped before its length is checked, and the documented pattern says so: a value the schema
  accepts is accepted, a value it refuses (white space only, too short once stripped) is refused.
- A method a path does not serve is 405 with an `Allow` naming every method served there.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import openapi_document
from tests.cme.conftest import CONFIRM, LA_A, Headers, child, open_candidates
from tests.support.clock import FrozenClock


@pytest.mark.parametrize("before", ["0", "1767225600", "2026-01-01T00:00:00", "20260101", "2026-1-1"])
def test_a_due_list_date_must_be_written_as_a_date(
    client: TestClient, headers: Headers, clock: FrozenClock, before: str
) -> None:
    response = client.get("/v1/cme/due", params={"before": before}, headers=headers())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("query.before", "date_format")]


def test_a_date_is_read_as_written(client: TestClient, headers: Headers, clock: FrozenClock) -> None:
    response = client.get("/v1/cme/due", params={"before": "2026-01-01"}, headers=headers())
    assert response.status_code == 200
    assert response.json()["before"] == "2026-01-01"
    records = client.get("/v1/cme/records", params={"due_before": "0"}, headers=headers())
    assert records.status_code == 422


def _basis_pattern() -> tuple[str, int]:
    schema = openapi_document()["components"]["schemas"]["ConfirmCandidate"]["properties"]["basis"]
    return schema["pattern"], schema["minLength"]


@pytest.mark.parametrize(
    ("basis", "valid"),
    [
        ("   ", False),  # minLength 3, but nothing once stripped
        ("  ab  ", False),  # two characters once stripped
        ("\t\n a \n\t", False),
        ("abc", True),
        ("  Seen at home.  ", True),
        ("Two lines:\nseen at home.", True),
        ("ab\x00c", False),
    ],
)
def test_stripped_text_the_schema_accepts_is_accepted_and_the_rest_refused(
    client: TestClient, headers: Headers, session: Session, clock: FrozenClock, basis: str, valid: bool
) -> None:
    pattern, min_length = _basis_pattern()
    assert (len(basis) >= min_length and re.fullmatch(pattern, basis) is not None) is valid
    (candidate_id,) = open_candidates(session, LA_A, [child()])
    response = client.post(
        f"/v1/cme/candidates/{candidate_id}/confirm", json={**CONFIRM, "basis": basis}, headers=headers()
    )
    assert response.status_code == (201 if valid else 422), response.text
    if not valid:
        assert response.json()["errors"][0]["field"] == "basis"


def test_a_name_of_white_space_only_is_refused_by_schema_and_service(
    client: TestClient, headers: Headers, session: Session, clock: FrozenClock
) -> None:
    schemas: dict[str, Any] = openapi_document()["components"]["schemas"]
    given = schemas["RecordPatch"]["properties"]["given_name"]["anyOf"][0]
    assert re.fullmatch(given["pattern"], " ") is None and re.fullmatch(given["pattern"], " Elin ")
    (candidate_id,) = open_candidates(session, LA_A, [child()])
    record = client.post(f"/v1/cme/candidates/{candidate_id}/confirm", json=CONFIRM, headers=headers())
    etag = record.headers["ETag"]
    patch = {"reason": "Spelling confirmed.", "given_name": " "}
    url = f"/v1/cme/records/{record.json()['id']}"
    refused = client.patch(url, json=patch, headers={**headers(), "If-Match": etag})
    assert refused.status_code == 422
    accepted = client.patch(
        url, json={**patch, "given_name": " Elin "}, headers={**headers(), "If-Match": etag}
    )
    assert accepted.status_code == 200 and accepted.json()["given_name"] == "Elin"


@pytest.mark.parametrize("method", ["OPTIONS", "DELETE", "PUT"])
def test_a_method_not_served_names_every_method_that_is(
    client: TestClient, headers: Headers, clock: FrozenClock, method: str
) -> None:
    url = "/v1/cme/records/00000000-0000-0000-0000-000000000001"
    response = client.request(method, url, headers=headers())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH"
    assert response.headers["content-type"] == "application/problem+json"
    restriction = client.request(
        method if method != "PUT" else "GET", f"{url}/restriction", headers=headers()
    )
    assert restriction.status_code == 405 and restriction.headers["allow"] == "PUT"
