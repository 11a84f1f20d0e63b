"""The one-month clock of a subject access request (UK GDPR art. 12(3), ICO guidance) and the DPO's due list."""

from __future__ import annotations

import datetime as dt

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
