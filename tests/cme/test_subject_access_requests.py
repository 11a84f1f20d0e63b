"""The one-month clock of a subject access request (UK GDPR art. 12(3), ICO guidance) and the DPO's due list."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme.clocks import add_calendar_months, subject_access_due
from tests.cme.conftest import LA_A, LA_B, Headers, make_record

DPO = "data_protection_officer"
URL = "/v1/cme/subject-access-requests"


@pytest.mark.parametrize(
    ("received_on", "months", "expected"),
    [
        (dt.date(2025, 1, 31), 1, dt.date(2025, 2, 28)),  # no 31 February: the month's last day
        (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),  # leap year
        (dt.date(2025, 1, 28), 1, dt.date(2025, 2, 28)),
        (dt.date(2025, 11, 30), 3, dt.date(2026, 2, 28)),  # across the year end
        (dt.date(2025, 12, 15), 1, dt.date(2026, 1, 15)),
    ],
)
def test_calendar_months_keep_the_day_or_take_the_months_last(
    received_on: dt.date, months: int, expected: dt.date
) -> None:
    assert add_calendar_months(received_on, months) == expected


def test_due_date_on_a_weekend_or_bank_holiday_moves_to_the_next_working_day() -> None:
    # 1 March 2025 is a Saturday; 25 and 26 December 2025 are bank holidays, 27-28 the weekend.
    assert subject_access_due(dt.date(2025, 2, 1)).due_on == dt.date(2025, 3, 3)
    assert subject_access_due(dt.date(2025, 11, 25)).due_on == dt.date(2025, 12, 29)
    assert subject_access_due(dt.date(2025, 1, 31)).due_on == dt.date(2025, 2, 28)


def test_dpo_records_a_request_and_sees_it_due(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    response = client.post(
        URL, json={"record_id": record_id, "received_on": "2025-01-31"}, headers=headers(LA_A, DPO)
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["record_id"], created["due_on"], created["extended_due_on"], created["state"]) == (
        record_id, "2025-02-28", "2025-04-30", "overdue"
    )  # fmt: skip
    later = client.post(
        URL, json={"record_id": record_id, "received_on": "2025-09-30"}, headers=headers(LA_A, DPO)
    )
    assert later.json()["due_on"] == "2025-10-30"
    # Today (frozen) is 2025-10-06: only the overdue one is due; by month end both are.
    due = client.get("/v1/cme/due", headers=headers(LA_A, DPO)).json()["subject_access_requests"]
    assert [(r["id"], r["state"]) for r in due] == [(created["id"], "overdue")]
    due = client.get("/v1/cme/due?before=2025-10-31", headers=headers(LA_A, DPO)).json()
    assert [r["due_on"] for r in due["subject_access_requests"]] == ["2025-02-28", "2025-10-30"]
    # Other roles' due list does not carry them, and other LAs never see them.
    assert (
        client.get("/v1/cme/due?before=2025-10-31", headers=headers()).json()["subject_access_requests"] == []
    )
    other = client.get("/v1/cme/due?before=2025-10-31", headers=headers(LA_B, DPO)).json()
    assert other["subject_access_requests"] == []
    session.expire_all()
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "cme.subject_access_request.record")
    ).all()
    assert [row.object_ids for row in audited] == [
        [record_id, created["id"]],
        [record_id, later.json()["id"]],
    ]


def test_only_the_dpo_records_requests_and_only_for_its_own_records(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    body = {"record_id": record_id, "received_on": "2025-10-01"}
    assert client.post(URL, json=body, headers=headers(LA_A, "designated_officer")).status_code == 403
    assert client.post(URL, json=body, headers=headers(LA_B, DPO)).status_code == 404
    assert (
        client.get("/v1/cme/due?before=2030-01-01", headers=headers(LA_A, DPO)).json()[
            "subject_access_requests"
        ]
        == []
    )


def _request(session: Session, client: TestClient, headers: Headers, received_on: str) -> dict[str, Any]:
    record_id = make_record(session, client, headers)
    response = client.post(
        URL, json={"record_id": record_id, "received_on": received_on}, headers=headers(LA_A, DPO)
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _actions(session: Session, request_id: str) -> list[str]:
    session.expire_all()
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    return [e.action for e in events if request_id in (e.object_ids or [])]


def test_an_extension_told_within_the_first_month_moves_the_deadline_once(
    session: Session, client: TestClient, headers: Headers
) -> None:
    request = _request(session, client, headers, "2025-09-30")
    url = f"{URL}/{request['id']}/extension"
    response = client.post(
        url, json={"reason": "complex", "informed_on": "2025-10-03"}, headers=headers(LA_A, DPO)
    )
    assert response.status_code == 200, response.text
    extended = response.json()
    assert (extended["due_on"], extended["extended_on"], extended["extension_reason"]) == (
        request["extended_due_on"], "2025-10-03", "complex"
    )  # fmt: skip
    assert extended["due_on"] == "2025-12-30" and extended["state"] == "not_due"
    # The due list follows the new deadline: not due this month any more.
    due = client.get("/v1/cme/due?before=2025-10-31", headers=headers(LA_A, DPO)).json()[
        "subject_access_requests"
    ]
    assert request["id"] not in [r["id"] for r in due]
    again = client.post(
        url, json={"reason": "numerous", "informed_on": "2025-10-04"}, headers=headers(LA_A, DPO)
    )
    assert (again.status_code, again.json()["type"]) == (409, "urn:cme-hub:problem:extension-not-allowed")
    assert _actions(session, request["id"]) == [
        "cme.subject_access_request.record", "cme.subject_access_request.extend"
    ]  # fmt: skip


def test_an_extension_is_refused_when_told_too_late_before_receipt_or_in_the_future(
    session: Session, client: TestClient, headers: Headers
) -> None:
    request = _request(session, client, headers, "2025-01-31")  # first deadline 2025-02-28
    url = f"{URL}/{request['id']}/extension"
    late = client.post(
        url, json={"reason": "complex", "informed_on": "2025-03-03"}, headers=headers(LA_A, DPO)
    )
    assert (late.status_code, late.json()["type"]) == (409, "urn:cme-hub:problem:extension-not-allowed")
    for day, code in (("2025-01-30", "before_receipt"), ("2025-10-07", "date_too_late")):
        wrong = client.post(url, json={"reason": "complex", "informed_on": day}, headers=headers(LA_A, DPO))
        assert wrong.status_code == 422, wrong.text
        assert wrong.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["code"]) for e in wrong.json()["errors"]] == [("informed_on", code)]
    unknown = client.post(
        url, json={"reason": "busy", "informed_on": "2025-02-01"}, headers=headers(LA_A, DPO)
    )
    assert unknown.status_code == 422
    assert client.get(f"{URL}/{request['id']}", headers=headers(LA_A, DPO)).json()["extended_on"] is None


def test_an_answered_request_stops_its_clock_and_leaves_the_due_list(
    session: Session, client: TestClient, headers: Headers
) -> None:
    request = _request(session, client, headers, "2025-01-31")  # overdue since 2025-02-28
    url = f"{URL}/{request['id']}/answer"
    for day, code in (("2025-01-30", "before_receipt"), ("2025-10-07", "date_too_late")):
        wrong = client.post(url, json={"answered_on": day}, headers=headers(LA_A, DPO))
        assert wrong.status_code == 422, wrong.text
        assert [(e["field"], e["code"]) for e in wrong.json()["errors"]] == [("answered_on", code)]
    response = client.post(url, json={"answered_on": "2025-03-04"}, headers=headers(LA_A, DPO))
    assert response.status_code == 200, response.text
    answered = response.json()
    assert (answered["answered_on"], answered["state"], answered["due_on"]) == (
        "2025-03-04",
        None,
        "2025-02-28",
    )
    due = client.get("/v1/cme/due?before=2030-01-01", headers=headers(LA_A, DPO)).json()[
        "subject_access_requests"
    ]
    assert due == []
    again = client.post(url, json={"answered_on": "2025-03-05"}, headers=headers(LA_A, DPO))
    assert (again.status_code, again.json()["type"]) == (
        409,
        "urn:cme-hub:problem:subject-access-request-answered",
    )
    extension = client.post(
        f"{URL}/{request['id']}/extension", json={"reason": "complex", "informed_on": "2025-02-01"},
        headers=headers(LA_A, DPO),
    )  # fmt: skip
    assert (extension.status_code, extension.json()["type"]) == (
        409, "urn:cme-hub:problem:subject-access-request-answered"
    )  # fmt: skip
    read = client.get(f"{URL}/{request['id']}", headers=headers(LA_A, DPO))
    assert read.status_code == 200 and read.json()["answered_on"] == "2025-03-04"
    assert _actions(session, request["id"]) == [
        "cme.subject_access_request.record", "cme.subject_access_request.answer", "cme.subject_access_request.read",
    ]  # fmt: skip


def test_only_the_las_dpo_reads_extends_or_answers_a_request(
    session: Session, client: TestClient, headers: Headers
) -> None:
    request = _request(session, client, headers, "2025-09-30")
    calls = [
        ("get", f"{URL}/{request['id']}", None),
        ("post", f"{URL}/{request['id']}/extension", {"reason": "complex", "informed_on": "2025-10-01"}),
        ("post", f"{URL}/{request['id']}/answer", {"answered_on": "2025-10-01"}),
    ]
    for method, url, body in calls:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        officer = client.request(method, url, headers=headers(LA_A, "designated_officer"), **kwargs)
        assert officer.status_code == 403, url
        other_la = client.request(method, url, headers=headers(LA_B, DPO), **kwargs)
        assert (other_la.status_code, other_la.json()["type"]) == (
            404, "urn:cme-hub:problem:subject-access-request-not-found"
        ), url  # fmt: skip
    missing = client.get(f"{URL}/{uuid.uuid4()}", headers=headers(LA_A, DPO))
    assert missing.status_code == 404
    assert client.get(f"{URL}/{request['id']}", headers=headers(LA_A, DPO)).json()["state"] == "not_due"
