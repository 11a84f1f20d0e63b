"""Dates an officer sends must be plausible for their field (decision 0014): 422 naming the field, never a
500 from a clock computed on year 9999, never a deadline in year 1. The service clock is 2025-10-06."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.cme.conftest import Headers, make_record
from tests.support.clock import FrozenClock

DPO = "data_protection_officer"
EVIDENCE = "Letter from the family, scanned to the case file."


@pytest.fixture
def record_id(session: Session, client: TestClient, headers: Headers) -> str:
    return make_record(session, client, headers)


def _response(value: Any) -> httpx.Response:
    """The test client's answer, typed (starlette's client types are not visible to mypy)."""
    assert isinstance(value, httpx.Response)
    return value


def _send(client: TestClient, headers: Headers, record_id: str, field: str, value: str) -> httpx.Response:
    """One request about the record carrying `value` in `field`, everything else valid."""
    record_url = f"/v1/cme/records/{record_id}"
    sar_url = "/v1/cme/subject-access-requests"
    if field in ("became_aware_on", "left_area_on"):
        body = {"ground": "moved_to_another_la", "became_aware_on": "2025-10-01", "evidence": EVIDENCE}
        return _response(
            client.post(f"{record_url}/removal-events", json=body | {field: value}, headers=headers())
        )
    if field == "received_on":
        return _response(
            client.post(sar_url, json={"record_id": record_id, field: value}, headers=headers(role=DPO))
        )
    if field == "erasure.received_on":
        body = {"received_on": value, "reason": "Art. 17(1)(d): never missing education."}
        return _response(client.post(f"{record_url}/erasure", json=body, headers=headers(role=DPO)))
    if field in ("informed_on", "answered_on"):
        body = {"record_id": record_id, "received_on": "2025-10-01"}
        sar_id = client.post(sar_url, json=body, headers=headers(role=DPO)).json()["id"]
        action, extra = ("extension", {"reason": "complex"}) if field == "informed_on" else ("answer", {})
        return _response(
            client.post(
                f"{sar_url}/{sar_id}/{action}", json=extra | {field: value}, headers=headers(role=DPO)
            )
        )
    if field == "date_of_birth":
        etag = client.get(record_url, headers=headers()).headers["ETag"]
        body = {"reason": "Birth certificate seen", field: value}
        return _response(client.patch(record_url, json=body, headers=headers() | {"If-Match": etag}))
    if field == "query.before":
        return _response(client.get(f"/v1/cme/due?before={value}", headers=headers()))
    assert field == "query.due_before"
    return _response(client.get(f"/v1/cme/records?due_before={value}", headers=headers()))


EARLY, LATE = "date_too_early", "date_too_late"
REFUSED = [
    # Things that happened during the pilot: from 2025-01-01 to today.
    *[(field, day, code) for field in ("became_aware_on", "received_on", "erasure.received_on", "informed_on",
                                       "answered_on")
      for day, code in (("0001-01-01", EARLY), ("2024-12-31", EARLY), ("2025-10-07", LATE), ("9999-12-31", LATE))],
    # Leaving the area: within 25 years before today and one year after.
    ("left_area_on", "0001-01-01", EARLY), ("left_area_on", "2000-10-05", EARLY),
    ("left_area_on", "2026-10-07", LATE), ("left_area_on", "9999-12-31", LATE),
    # A child's date of birth: within the 25 years up to today.
    ("date_of_birth", "0201-03-02", EARLY), ("date_of_birth", "2000-10-05", EARLY),
    ("date_of_birth", "2025-10-07", LATE), ("date_of_birth", "9999-12-31", LATE),
    # How far a due list looks: from the pilot's start to 20 years after today.
    ("query.before", "0001-01-01", EARLY), ("query.before", "2045-10-07", LATE),
    ("query.due_before", "2024-12-31", EARLY), ("query.due_before", "9999-12-31", LATE),
]  # fmt: skip


@pytest.mark.parametrize(("field", "day", "code"), REFUSED)
def test_an_implausible_date_is_refused_naming_the_field(
    client: TestClient, headers: Headers, record_id: str, field: str, day: str, code: str
) -> None:
    response = _send(client, headers, record_id, field, day)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "urn:cme-hub:problem:invalid-request"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field.removeprefix("erasure."), code)]


@pytest.mark.parametrize(
    ("field", "day"),
    [
        ("became_aware_on", "2025-01-01"), ("became_aware_on", "2025-10-06"), ("received_on", "2025-10-06"),
        ("left_area_on", "2000-10-06"), ("left_area_on", "2026-10-06"),
        ("date_of_birth", "2000-10-06"), ("date_of_birth", "2025-10-06"),
        ("query.before", "2045-10-06"), ("query.due_before", "2025-01-01"),
    ],
)  # fmt: skip
def test_the_ends_of_each_range_are_accepted(
    client: TestClient, headers: Headers, record_id: str, field: str, day: str
) -> None:
    assert _send(client, headers, record_id, field, day).status_code in (200, 201)


def test_the_ranges_follow_the_service_clock(
    client: TestClient, headers: Headers, record_id: str, clock: FrozenClock
) -> None:
    assert _send(client, headers, record_id, "became_aware_on", "2025-10-07").status_code == 422
    clock.advance(dt.timedelta(days=1).total_seconds())
    assert _send(client, headers, record_id, "became_aware_on", "2025-10-07").status_code == 201


def test_the_ranges_are_documented_in_the_openapi_document(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    aware = schemas["RemovalEventCreate"]["properties"]["became_aware_on"]
    assert "from 2025-01-01 to today" in aware["description"]
