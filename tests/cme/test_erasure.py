"""Erasure (UK GDPR art. 17) by the data protection officer: the removal's hard delete, plus transfers' data."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme.models import CmeCandidate, CmeRecord, CmeRecordStub, CmeTransfer
from tests.cme.conftest import CONFIRM, LA_A, LA_B, Headers, child, make_record, open_candidates
from tests.cme.test_removal import PERSONAL_VALUES, _dump_my_tables, _etag

DPO = "data_protection_officer"
ERASURE = {"received_on": "2025-10-01", "reason": "Art. 17(1)(d): the child was never missing education."}
EVIDENCE = "Parent phoned the office."
MOVE = {"ground": "moved_to_another_la", "became_aware_on": "2025-10-01", "evidence": EVIDENCE}


def _erase(client: TestClient, headers: Headers, record_id: str, role: str = DPO, la_id: str = LA_A) -> Any:
    etag = _etag(client, headers, record_id)
    return client.post(
        f"/v1/cme/records/{record_id}/erasure",
        json=ERASURE,
        headers=headers(la_id, role) | {"If-Match": etag},
    )


def _moved_and_sent(session: Session, client: TestClient, headers: Headers, to: str, **fields: Any) -> str:
    """A record with contacts, a reg 6 ground with evidence, and a transfer to `to`."""
    record_id = make_record(session, client, headers, **fields)
    patch = {"reason": "From school nurse", "parents": [{"name": "Rhian", "phone": "029 2000 0000"}]}
    designated = headers(LA_A, "designated_officer") | {"If-Match": _etag(client, headers, record_id)}
    assert client.patch(f"/v1/cme/records/{record_id}", json=patch, headers=designated).status_code == 200
    url = f"/v1/cme/records/{record_id}"
    assert client.post(f"{url}/removal-events", json=MOVE, headers=headers()).status_code == 201
    assert client.post(f"{url}/transfers", json={"receiving_la": to}, headers=headers()).status_code == 201
    return record_id


def test_erasure_deletes_the_record_and_what_cascades_leaving_the_stub(
    session: Session, client: TestClient, headers: Headers
) -> None:
    to_pilot = _moved_and_sent(session, client, headers, LA_B)
    to_other = _moved_and_sent(session, client, headers, "E09000033", given="Osian", family="Rees")
    for record_id in (to_pilot, to_other):
        response = _erase(client, headers, record_id)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "id": record_id, "created_at": "2025-10-06T09:30:00Z", "removed_at": "2025-10-06T09:30:00Z",
            "ground": "erasure", "regulation": None, "became_aware_on": "2025-10-01", "remove_due_on": None,
        }  # fmt: skip
        assert client.get(f"/v1/cme/records/{record_id}", headers=headers(LA_A, DPO)).status_code == 404
    session.expire_all()
    assert session.scalars(select(CmeRecord)).all() == []
    assert {stub.id.hex: stub.reason for stub in session.scalars(select(CmeRecordStub))} == {
        record_id.replace("-", ""): ERASURE["reason"] for record_id in (to_pilot, to_other)
    }
    transfers = {
        str(t.record_id): (t.status, t.snapshot, t.package_sha256)
        for t in session.scalars(select(CmeTransfer))
    }
    assert transfers == {to_pilot: ("erased", None, None), to_other: ("package_issued", None, None)}
    # The receiving pilot LA no longer has anything to decide on.
    assert client.get("/v1/cme/transfers", headers=headers(LA_B)).json()["items"] == []
    dump = _dump_my_tables(session)
    left = [value for value in (*PERSONAL_VALUES, "Osian", EVIDENCE, str(CONFIRM["basis"])) if value in dump]
    assert left == []


def test_erasure_is_audited_as_a_data_subject_right(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    assert _erase(client, headers, record_id).status_code == 200
    session.expire_all()
    row = session.scalars(select(AuditEvent).where(AuditEvent.action == "cme.record.erase")).one()
    assert (row.object_ids, row.role, row.purpose, row.partner_id) == (
        [record_id],
        DPO,
        "data_subject_rights",
        LA_A,
    )


@pytest.mark.parametrize("role", ["case_officer", "designated_officer"])
def test_only_the_data_protection_officer_erases(
    session: Session, client: TestClient, headers: Headers, role: str
) -> None:
    record_id = make_record(session, client, headers)
    assert _erase(client, headers, record_id, role=role).status_code == 403
    assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 200


def test_another_las_record_is_not_found(session: Session, client: TestClient, headers: Headers) -> None:
    record_id = make_record(session, client, headers)
    url = f"/v1/cme/records/{record_id}/erasure"
    response = client.post(url, json=ERASURE, headers=headers(LA_B, DPO) | {"If-Match": '"1"'})
    assert response.status_code == 404
    assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 200


def test_erasure_needs_a_current_etag_and_a_reason(
    session: Session, client: TestClient, headers: Headers
) -> None:
    record_id = make_record(session, client, headers)
    url = f"/v1/cme/records/{record_id}/erasure"
    assert client.post(url, json=ERASURE, headers=headers(LA_A, DPO)).status_code == 428
    assert client.post(url, json=ERASURE, headers=headers(LA_A, DPO) | {"If-Match": '"9"'}).status_code == 412
    etag = _etag(client, headers, record_id)
    no_reason = {"received_on": "2025-10-01"}
    assert (
        client.post(url, json=no_reason, headers=headers(LA_A, DPO) | {"If-Match": etag}).status_code == 422
    )
    assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 200


def test_open_candidate_erasure_closes_it_and_deletes_its_data(
    session: Session, client: TestClient, headers: Headers
) -> None:
    (candidate_id,) = open_candidates(session, LA_A, [child()])
    url = f"/v1/cme/candidates/{candidate_id}/erasure"
    assert client.post(url, json=ERASURE, headers=headers(LA_A, "case_officer")).status_code == 403
    assert client.post(url, json=ERASURE, headers=headers(LA_B, DPO)).status_code == 404
    response = client.post(url, json=ERASURE, headers=headers(LA_A, DPO))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["outcome"], body["family_name"], body["date_of_birth"]) == (
        "resolved",
        "erasure",
        None,
        None,
    )
    assert client.post(url, json=ERASURE, headers=headers(LA_A, DPO)).status_code == 409
    events = client.get(f"/v1/cme/candidates/{candidate_id}/history", headers=headers()).json()["events"]
    assert (events[-1]["action"], events[-1]["reason"], events[-1]["role"]) == (
        "erased",
        ERASURE["reason"],
        DPO,
    )
    session.expire_all()
    assert session.get(CmeCandidate, candidate_id) is not None
    dump = _dump_my_tables(session)
    assert [value for value in PERSONAL_VALUES if value in dump] == []
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "cme.candidate.erase")).one()
