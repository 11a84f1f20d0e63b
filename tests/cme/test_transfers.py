"""Reg 6 transfers: a pilot LA receives an incoming transfer to accept or decline; others get a signed package."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cme.models import CmeTransfer
from tests.cme.conftest import CONFIRM, LA_A, LA_B, Headers, make_record
from tests.support.jws import verify_service_jws

MOVE = {
    "ground": "moved_to_another_la",
    "became_aware_on": "2025-10-01",
    "evidence": "Parent phoned the office.",
}


@pytest.fixture
def moving(session: Session, client: TestClient, headers: Headers) -> str:
    """A record of LA A whose child is (likely) moving: the 28-day inform clock runs."""
    record_id = make_record(session, client, headers)
    assert (
        client.post(f"/v1/cme/records/{record_id}/removal-events", json=MOVE, headers=headers()).status_code
        == 201
    )
    return record_id


def _transfer(client: TestClient, headers: Headers, record_id: str, to: str) -> Any:
    return client.post(f"/v1/cme/records/{record_id}/transfers", json={"receiving_la": to}, headers=headers())


def test_r6_2_transfer_to_a_pilot_la_stops_the_notify_clock_and_waits_for_it(
    session: Session, client: TestClient, headers: Headers, moving: str
) -> None:
    response = _transfer(client, headers, moving, LA_B)
    assert response.status_code == 201, response.text
    transfer = response.json()
    assert (transfer["status"], transfer["to_la"], transfer["package"]) == ("pending", LA_B, None)
    assert client.get("/v1/cme/due?before=2026-01-01", headers=headers()).json()["items"] == []
    history = client.get(f"/v1/cme/records/{moving}/history", headers=headers()).json()["events"]
    assert (history[-1]["action"], history[-1]["fields"]) == ("receiving_la_informed", [LA_B])
    incoming = client.get("/v1/cme/transfers", headers=headers(LA_B)).json()["items"]
    assert [(t["id"], t["from_la"], t["family_name"], t["date_of_birth"]) for t in incoming] == [
        (transfer["id"], LA_A, "Pritchard", "2014-03-02")
    ]
    assert client.get("/v1/cme/transfers", headers=headers(LA_A)).json()["items"] == []


def test_r6_receiving_pilot_la_accepts_with_its_own_reg3_decision(
    session: Session, client: TestClient, headers: Headers, moving: str
) -> None:
    transfer_id = _transfer(client, headers, moving, LA_B).json()["id"]
    # Only the receiving LA can act on it.
    assert (
        client.post(
            f"/v1/cme/transfers/{transfer_id}/accept", json=CONFIRM, headers=headers(LA_A)
        ).status_code
        == 404
    )
    response = client.post(
        f"/v1/cme/transfers/{transfer_id}/accept", json=CONFIRM, headers=headers(LA_B, officer_id="b-7")
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert (record["family_name"], record["address"]["postcode"], record["csa_removal_on"]) == (
        "Pritchard",
        "CF10 1AA",
        "2030-06-29",
    )
    assert record["provenance"]["family_name"]["source"] == "transfer"
    assert record["provenance"]["family_name"]["from_la"] == LA_A
    assert [r["id"] for r in client.get("/v1/cme/records", headers=headers(LA_B)).json()["items"]] == [
        record["id"]
    ]
    stored = session.scalars(select(CmeTransfer)).one()
    assert (stored.status, stored.snapshot, str(stored.new_record_id), stored.decided_by) == (
        "accepted",
        None,
        record["id"],
        "b-7",
    )
    again = client.post(f"/v1/cme/transfers/{transfer_id}/accept", json=CONFIRM, headers=headers(LA_B))
    assert again.status_code == 404


def test_r6_declined_transfer_deletes_the_data_sent(
    session: Session, client: TestClient, headers: Headers, moving: str
) -> None:
    transfer_id = _transfer(client, headers, moving, LA_B).json()["id"]
    assert client.post(f"/v1/cme/transfers/{transfer_id}/decline", headers=headers(LA_A)).status_code == 404
    response = client.post(f"/v1/cme/transfers/{transfer_id}/decline", headers=headers(LA_B))
    assert response.status_code == 200 and response.json()["status"] == "declined"
    session.expire_all()
    assert session.scalars(select(CmeTransfer)).one().snapshot is None
    assert client.get("/v1/cme/transfers", headers=headers(LA_B)).json()["items"] == []


@pytest.mark.parametrize("receiving_la", ["W06000015", "E09000033"], ids=["welsh-non-pilot", "english"])
def test_r6_non_pilot_la_gets_a_package_signed_by_the_service(
    receiving_la: str, session: Session, client: TestClient, headers: Headers, moving: str
) -> None:
    response = _transfer(client, headers, moving, receiving_la)
    assert response.status_code == 201, response.text
    body = response.json()
    package: str = body["package"]
    assert (body["status"], body["package_sha256"]) == (
        "package_issued",
        hashlib.sha256(package.encode()).hexdigest(),
    )
    claims = verify_service_jws(client, package, "cme-transfer+jws")
    assert (claims["from_la"], claims["to_la"], claims["regulation"]) == (LA_A, receiving_la, 6)
    assert (
        claims["record"]["family_name"] == "Pritchard" and claims["record"]["date_of_birth"] == "2014-03-02"
    )
    # Only the hash of the package is kept.
    session.expire_all()
    stored = session.scalars(select(CmeTransfer)).one()
    assert (stored.snapshot, stored.package_sha256) == (None, body["package_sha256"])


def test_transfer_needs_a_recorded_move(session: Session, client: TestClient, headers: Headers) -> None:
    record_id = make_record(session, client, headers)
    assert _transfer(client, headers, record_id, LA_B).status_code == 409


def test_transfer_to_itself_or_to_a_non_la_is_refused(
    client: TestClient, headers: Headers, moving: str
) -> None:
    assert _transfer(client, headers, moving, LA_A).status_code == 409
    assert _transfer(client, headers, moving, "W11000001").status_code == 422
    assert _transfer(client, headers, moving, "S12000033").status_code == 422


def test_dpo_cannot_transfer_or_accept(client: TestClient, headers: Headers, moving: str) -> None:
    url = f"/v1/cme/records/{moving}/transfers"
    assert (
        client.post(
            url, json={"receiving_la": LA_B}, headers=headers(LA_A, "data_protection_officer")
        ).status_code
        == 403
    )
    transfer_id = _transfer(client, headers, moving, LA_B).json()["id"]
    dpo_b = headers(LA_B, "data_protection_officer")
    assert (
        client.post(f"/v1/cme/transfers/{transfer_id}/accept", json=CONFIRM, headers=dpo_b).status_code == 403
    )
