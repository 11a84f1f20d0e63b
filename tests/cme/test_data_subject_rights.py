"""Data subject rights on CME records: restriction (stored, never listed) and subject access with the access log."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from tests.cme.conftest import LA_A, Headers, make_record

RESTRICT = {"restricted": True, "reason": "Parent disputes accuracy (UK GDPR art 18)"}


def _etag(client: TestClient, headers: Headers, record_id: str) -> str:
    etag: str = client.get(f"/v1/cme/records/{record_id}", headers=headers()).headers["ETag"]
    return etag


def _restrict(
    client: TestClient, headers: Headers, record_id: str, body: dict[str, object], role: str
) -> int:
    etag = _etag(client, headers, record_id)
    url = f"/v1/cme/records/{record_id}/restriction"
    status: int = client.put(url, json=body, headers=headers(LA_A, role) | {"If-Match": etag}).status_code
    return status


def _listed(client: TestClient, headers: Headers) -> list[str]:
    return [item["id"] for item in client.get("/v1/cme/records", headers=headers()).json()["items"]]


def test_restricted_record_is_stored_but_never_listed_until_lifted(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    assert _restrict(client, headers, record_id, RESTRICT, "data_protection_officer") == 200
    assert _listed(client, headers) == []
    body = client.get(f"/v1/cme/records/{record_id}", headers=headers()).json()
    assert body["flags"]["restricted"] is True and body["given_name"] == "Elin"
    lift = {"restricted": False, "reason": "Accuracy confirmed with the parent"}
    assert _restrict(client, headers, record_id, lift, "designated_officer") == 200
    assert _listed(client, headers) == [record_id]
    events = client.get(f"/v1/cme/records/{record_id}/history", headers=headers()).json()["events"]
    assert [(e["action"], e["reason"]) for e in events[1:]] == [
        ("restricted", RESTRICT["reason"]),
        ("restriction_lifted", lift["reason"]),
    ]


def test_case_officers_cannot_restrict(session: Session, client: TestClient, headers: Headers) -> None:
    record_id = make_record(session, client, headers)
    assert _restrict(client, headers, record_id, RESTRICT, "case_officer") == 403
    assert _listed(client, headers) == [record_id]


def test_restriction_needs_a_current_etag(session: Session, client: TestClient, headers: Headers) -> None:
    record_id = make_record(session, client, headers)
    url = f"/v1/cme/records/{record_id}/restriction"
    dpo = headers(LA_A, "data_protection_officer")
    assert client.put(url, json=RESTRICT, headers=dpo).status_code == 428
    dpo = headers(LA_A, "data_protection_officer")
    assert client.put(url, json=RESTRICT, headers=dpo | {"If-Match": '"7"'}).status_code == 412


def test_subject_access_export_holds_everything_and_the_access_log(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    # Make the address sensitive and add contacts: the export shows them all the same.
    etag = _etag(client, headers, record_id)
    patch = {"reason": "Refuge address", "sensitive": True, "parents": [{"name": "Rhian Pritchard"}]}
    designated = headers(LA_A, "designated_officer", officer_id="designated-2")
    assert (
        client.patch(
            f"/v1/cme/records/{record_id}", json=patch, headers=designated | {"If-Match": etag}
        ).status_code
        == 200
    )
    client.get(f"/v1/cme/records/{record_id}", headers=headers(officer_id="reader-7"))
    response = client.get(
        f"/v1/cme/records/{record_id}/subject-access-export",
        headers=headers(LA_A, "data_protection_officer", "dpo-1"),
    )
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["record"]["address"]["postcode"] == "CF10 1AA"
    assert export["record"]["parents"] == [
        {"name": "Rhian Pritchard", "address": None, "phone": None, "email": None}
    ]
    assert export["record"]["hidden_fields"] == []
    assert [e["action"] for e in export["history"]] == ["included", "corrected"]
    log = [(e["action"], e["officer_id"]) for e in export["access_log"]]
    # The candidate's life before the record is part of the child's access log too.
    assert log == [
        ("cme.candidate.open", None),
        ("cme.candidate.confirm", "officer-1"),
        ("cme.record.read", "officer-1"),
        ("cme.record.correct", "designated-2"),
        ("cme.record.read", "reader-7"),
    ]
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.action, last.officer_id, last.purpose, last.object_ids) == (
        "cme.record.subject_access",
        "dpo-1",
        "data_subject_rights",
        [record_id],
    )


def test_subject_access_export_is_for_the_dpo_only(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    for role in ("case_officer", "designated_officer"):
        url = f"/v1/cme/records/{record_id}/subject-access-export"
        assert client.get(url, headers=headers(LA_A, role)).status_code == 403
