"""Dual registration (issue 9): a child on a school roll and on the EHE register keeps both links, and the
LA is told through `GET /v1/matching/dual-registrations`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs.worker import Worker
from app.matching.models import MatchOutcome
from app.partners.models import PartnerKind
from app.wiring.jobs import default_handlers
from tests.matching.test_matching_api import as_officer, on_roll, send
from tests.submissions.conftest import OTHER_PILOT_LA, PILOT_LA, child, payload
from tests.support.partners import TestPartner, create_partner

NIA = child(
    given_name="Nia",
    middle_names=None,
    family_name="Griffiths",
    date_of_birth="2012-09-14",
    address={"lines": ["7 Maes y Llan"], "town": "Amlwch", "postcode": "LL68 9AB"},
)
NIA_AT_HOME = {k: v for k, v in NIA.items()} | {"sex": "F"}
TWIN = NIA | {"given_name": "Non"}


@pytest.fixture
def parties(session: Session) -> tuple[TestPartner, TestPartner, TestPartner]:
    return (
        create_partner(session, "W11000023", PartnerKind.local_health_board),
        create_partner(session, PILOT_LA, PartnerKind.local_authority),
        create_partner(session, OTHER_PILOT_LA, PartnerKind.local_authority),
    )


def run(engine: Engine, settings: Settings) -> None:
    Worker(make_session_factory(engine), default_handlers(settings)).run_until_idle()


def register(client: TestClient, la: TestPartner, kind: str, records: list[dict[str, Any]]) -> None:
    assert send(client, la, payload(la.id, records, kind=kind, recipient=None)).status_code == 201


def test_a_child_on_a_roll_and_the_ehe_register_keeps_both_links_and_the_la_is_told(
    client: TestClient, session: Session, engine: Engine, settings: Settings,
    parties: tuple[TestPartner, TestPartner, TestPartner],
) -> None:  # fmt: skip
    board, la, _ = parties
    register(client, la, "school_roll", [on_roll(NIA, "6602001")])
    register(client, la, "ehe_register", [NIA_AT_HOME])
    sent = send(client, board, payload(board.id, [NIA]))
    run(engine, settings)

    outcome = session.scalars(select(MatchOutcome)).one()
    assert outcome.outcome == "matched"
    (other,) = outcome.other_registrations or []
    assert {outcome.register, other["register"]} == {"school_roll", "ehe_register"}
    assert other["education_child_id"] != outcome.education_child_id and other["la_id"] == PILOT_LA
    job = client.get(f"/v1/jobs/{sent.json()['job_id']}", headers=as_officer(la)).json()
    assert job["result"]["dual_registrations"] == 1

    page = client.get("/v1/matching/dual-registrations", headers=as_officer(la)).json()
    (item,) = page["items"]
    assert item["id"] == str(outcome.id) and item["outcome"] == "matched" and page["next_cursor"] is None
    registrations = item["registrations"]
    assert [r["register_type"] for r in registrations] == [outcome.register, other["register"]]
    assert {r["education_child_id"] for r in registrations} == {
        outcome.education_child_id,
        other["education_child_id"],
    }
    assert any(r["school_number"] == "6602001" for r in registrations)
    listed = session.scalars(select(AuditEvent).where(AuditEvent.action == "matching.dual_registration.list"))
    assert {e.object_type for e in listed} == {"match_outcome", "education_child"}


def test_another_las_record_shows_only_that_la_and_its_register(
    client: TestClient, session: Session, engine: Engine, settings: Settings,
    parties: tuple[TestPartner, TestPartner, TestPartner],
) -> None:  # fmt: skip
    board, la, other_la = parties
    register(client, la, "ehe_register", [NIA_AT_HOME])
    register(client, other_la, "school_roll", [on_roll(NIA, "6612001")])
    send(client, board, payload(board.id, [NIA]))
    run(engine, settings)

    (item,) = client.get("/v1/matching/dual-registrations", headers=as_officer(la)).json()["items"]
    foreign = [r for r in item["registrations"] if r["la_id"] == OTHER_PILOT_LA]
    assert foreign == [{"la_id": OTHER_PILOT_LA, "register_type": "school_roll", "education_child_id": None,
                        "school_number": None, "school_name": None}]  # fmt: skip
    # The other LA is not the child's: it is told nothing here.
    assert client.get("/v1/matching/dual-registrations", headers=as_officer(other_la)).json()["items"] == []


def test_a_twins_record_is_no_second_registration(
    client: TestClient, session: Session, engine: Engine, settings: Settings,
    parties: tuple[TestPartner, TestPartner, TestPartner],
) -> None:  # fmt: skip
    board, la, _ = parties
    register(client, la, "school_roll", [on_roll(NIA, "6602001"), on_roll(TWIN, "6602001")])
    send(client, board, payload(board.id, [NIA]))
    run(engine, settings)
    outcome = session.scalars(select(MatchOutcome)).one()
    assert outcome.outcome == "matched" and outcome.other_registrations is None
    assert client.get("/v1/matching/dual-registrations", headers=as_officer(la)).json()["items"] == []


def test_only_local_authorities_are_told(
    client: TestClient, parties: tuple[TestPartner, TestPartner, TestPartner]
) -> None:
    from tests.support.tokens import auth_header

    board = parties[0]
    response = client.get("/v1/matching/dual-registrations", headers=auth_header(board.key, board.id))
    assert response.status_code == 403
