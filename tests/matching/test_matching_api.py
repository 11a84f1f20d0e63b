"""Matching end to end on PostgreSQL: signed lists in, the worker runs, outcomes, minimisation, reviews, /v1/match."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme.models import CmeCandidate
from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs.models import Job
from app.jobs.worker import Worker
from app.matching import service
from app.matching.models import MatchOutcome, MatchRun
from app.matching.service import RealtimeIndexHolder
from app.partners.models import PartnerKind
from app.submissions.models import HealthChild, Submission
from app.wiring.jobs import default_handlers
from tests.submissions.conftest import OTHER_PILOT_LA, PILOT_LA, child, payload, pupil
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header, signed_body

JOSE = {"Content-Type": "application/jose"}
OFFICER = {"officer": {"id": "officer-7", "role": "case_officer"}}

# Synthetic children. Siân is on the pilot LA's roll, Dafydd on the other LA's, Tomos on none, and
# Eleri shares surname, birthday and address with Elin on the roll: twins look like that, so a person decides.
SIAN = child()
DAFYDD = child(
    given_name="Dafydd",
    middle_names=None,
    family_name="Rees",
    date_of_birth="2013-01-09",
    address={"lines": ["3 Stryd Fawr"], "town": "Bangor", "postcode": "LL57 1AB"},
)
TOMOS = child(
    given_name="Tomos",
    middle_names=None,
    family_name="Evans",
    date_of_birth="2011-11-11",
    address={"lines": ["1 Lon Isaf"], "town": "Rhyl", "postcode": "LL18 1AA"},
)
ELIN = child(
    given_name="Elin",
    middle_names=None,
    family_name="Hughes",
    date_of_birth="2012-03-15",
    address={"lines": ["8 Ffordd Penrhos"], "town": "Caergybi", "postcode": "LL65 2AA"},
)
ELERI = {**ELIN, "given_name": "Eleri"}
PERSONAL_VALUES = ("Siân", "Prys-Jones", "Dafydd", "Rees", "2014-06-02", "2013-01-09", "LL77 7AA", "LL57 1AB")


def on_roll(record: dict[str, Any], school: str) -> dict[str, Any]:
    return pupil(**{k: v for k, v in record.items() if k != "address"}, address=record["address"]) | {
        "school": {"number": school, "name": "Ysgol Synthetig"}
    }


def send(client: TestClient, partner: TestPartner, body: dict[str, Any]) -> httpx.Response:
    headers = {**JOSE, **auth_header(partner.key, partner.id)}
    response: httpx.Response = client.post(
        "/v1/submissions", content=signed_body(partner.key, body), headers=headers
    )
    return response


def levels(explanation: dict[str, Any]) -> dict[str, str]:
    return {item["field"]: item["level"] for item in explanation["fields"]}


def as_officer(partner: TestPartner) -> dict[str, str]:
    return auth_header(partner.key, partner.id, claims=OFFICER)


@dataclass
class World:
    health_board: TestPartner
    la: TestPartner
    other_la: TestPartner
    health_submission: uuid.UUID
    health_job: uuid.UUID
    worker: Worker


def count(session: Session, model: type[Any], *where: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture(name="world")
def world_fixture(client: TestClient, session: Session, engine: Engine, settings: Settings) -> World:
    health_board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    other_la = create_partner(session, OTHER_PILOT_LA, PartnerKind.local_authority)
    for partner, records in (
        (la, [on_roll(SIAN, "6602001"), on_roll(ELIN, "6602001")]),
        (other_la, [on_roll(DAFYDD, "6612001")]),
    ):
        response = send(client, partner, payload(partner.id, records, kind="school_roll", recipient=None))
        assert response.status_code == 201, response.text
    health = send(client, health_board, payload(health_board.id, [SIAN, DAFYDD, TOMOS, ELERI]))
    assert health.status_code == 201, health.text
    worker = Worker(make_session_factory(engine), default_handlers(settings))
    return World(
        health_board=health_board,
        la=la,
        other_la=other_la,
        health_submission=uuid.UUID(health.json()["submission_id"]),
        health_job=uuid.UUID(health.json()["job_id"]),
        worker=worker,
    )


def outcomes(session: Session, submission_id: uuid.UUID) -> dict[int, MatchOutcome]:
    session.expire_all()
    rows = session.scalars(select(MatchOutcome).where(MatchOutcome.submission_id == submission_id))
    return {row.record_index: row for row in rows}


class TestHealthListRun:
    def test_outcomes_minimisation_candidates_and_status(
        self, world: World, session: Session, client: TestClient
    ) -> None:
        assert world.worker.run_until_idle() == 3  # a re-match per register, then the health list
        assert set(session.scalars(select(Job.status))) == {"succeeded"}

        by_index = outcomes(session, world.health_submission)
        assert {i: o.outcome for i, o in by_index.items()} == {
            0: "matched",
            1: "matched",
            2: "unmatched",
            3: "possible",
        }
        assert by_index[1].education_la == OTHER_PILOT_LA
        assert by_index[0].register == "school_roll"
        assert by_index[0].model_version == "defaults-7"
        assert levels(service.stored_explanation(session, by_index[0]))["dob"] == "exact"
        assert levels(service.stored_explanation(session, by_index[3]))["given"] == "different"
        assert by_index[3].review_status == "pending"

        # Matched rows are gone at once; the unmatched one became a candidate and left staging too.
        remaining = session.scalars(
            select(HealthChild.record_index).where(HealthChild.submission_id == world.health_submission)
        )
        assert sorted(remaining) == [3]
        candidate = session.scalars(select(CmeCandidate)).one()
        assert candidate.la_id == PILOT_LA
        assert candidate.given_name == "Tomos"
        assert by_index[2].candidate_id == candidate.id

        submission = session.get(Submission, world.health_submission)
        assert submission is not None and submission.status == "matched"
        run = session.scalars(select(MatchRun).where(MatchRun.submission_id == world.health_submission)).one()
        assert run.summary["outcomes"] == {"matched": 2, "possible": 1, "unmatched": 1}
        assert run.summary["by_register"] == {"school_roll": {"matched": 2, "possible": 1}}

    def test_no_personal_data_of_matched_children_remains(self, world: World, session: Session) -> None:
        world.worker.run_until_idle()
        session.expire_all()
        staged = session.scalars(select(HealthChild)).all()
        assert {row.given_name for row in staged} == {"Eleri"}
        stored = (
            [json.dumps(job.payload) for job in session.scalars(select(Job))]
            + [
                json.dumps([o.evidence, o.register, o.education_la, o.review_reason], default=str)
                for o in session.scalars(select(MatchOutcome))
            ]
            + [json.dumps(run.summary) for run in session.scalars(select(MatchRun))]
        )
        for value in PERSONAL_VALUES:
            assert not any(value in text for text in stored), value

    def test_job_reports_progress_and_result(self, world: World, client: TestClient) -> None:
        world.worker.run_until_idle()
        response = client.get(
            f"/v1/jobs/{world.health_job}", headers=auth_header(world.health_board.key, world.health_board.id)
        )
        assert response.status_code == 200
        job = response.json()
        assert job["status"] == "succeeded"
        assert (job["progress_done"], job["progress_total"]) == (4, 4)
        assert job["result"]["outcomes"]["matched"] == 2


class TestReviews:
    def test_list_read_and_confirm(self, world: World, session: Session, client: TestClient) -> None:
        world.worker.run_until_idle()
        listed = client.get("/v1/matching/reviews", headers=as_officer(world.la))
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert len(items) == 1 and listed.json()["next_cursor"] is None
        review_id = items[0]["id"]

        detail = client.get(f"/v1/matching/reviews/{review_id}", headers=as_officer(world.la)).json()
        assert detail["health_child"]["given_name"] == "Eleri"
        assert detail["candidates"][0]["child"]["given_name"] == "Elin"
        assert detail["candidates"][0]["school_number"] == "6602001"
        assert levels(detail["explanation"])["given"] == "different"

        decided = client.post(
            f"/v1/matching/reviews/{review_id}/decision",
            json={"decision": "confirm", "reason": "Same child: school confirmed the preferred name."},
            headers=as_officer(world.la),
        )
        assert decided.status_code == 200, decided.text
        assert decided.json()["review_status"] == "confirmed"
        assert count(session, HealthChild) == 0
        assert count(session, CmeCandidate) == 1  # only Tomos
        again = client.post(
            f"/v1/matching/reviews/{review_id}/decision",
            json={"decision": "reject", "reason": "second thoughts"},
            headers=as_officer(world.la),
        )
        assert again.status_code == 409
        actions = set(session.scalars(select(AuditEvent.action)))
        assert {"matching.review.list", "matching.review.read", "matching.review.confirmed"} <= actions

    def test_reject_opens_a_candidate(self, world: World, session: Session, client: TestClient) -> None:
        world.worker.run_until_idle()
        review_id = client.get("/v1/matching/reviews", headers=as_officer(world.la)).json()["items"][0]["id"]
        decided = client.post(
            f"/v1/matching/reviews/{review_id}/decision",
            json={"decision": "reject", "reason": "A twin, not the same child."},
            headers=as_officer(world.la),
        )
        assert decided.status_code == 200, decided.text
        assert count(session, HealthChild) == 0
        names = set(session.scalars(select(CmeCandidate.given_name)))
        assert names == {"Tomos", "Eleri"}
        outcome = session.get(MatchOutcome, uuid.UUID(review_id))
        assert (
            outcome is not None and outcome.candidate_id is not None and outcome.review_status == "rejected"
        )

    def test_other_la_sees_nothing(self, world: World, client: TestClient) -> None:
        world.worker.run_until_idle()
        review_id = client.get("/v1/matching/reviews", headers=as_officer(world.la)).json()["items"][0]["id"]
        assert client.get("/v1/matching/reviews", headers=as_officer(world.other_la)).json()["items"] == []
        for response in (
            client.get(f"/v1/matching/reviews/{review_id}", headers=as_officer(world.other_la)),
            client.post(
                f"/v1/matching/reviews/{review_id}/decision",
                json={"decision": "confirm", "reason": "not mine"},
                headers=as_officer(world.other_la),
            ),
        ):
            assert response.status_code == 404

    def test_health_board_is_refused(self, world: World, client: TestClient) -> None:
        response = client.get(
            "/v1/matching/reviews", headers=auth_header(world.health_board.key, world.health_board.id)
        )
        assert response.status_code == 403

    def test_cursor_pages_through_the_queue(self, world: World, client: TestClient) -> None:
        # A later list with two more sisters of Elin adds a review: one of them may be the child on Elin's
        # record (given names differ), the other is left for the LA (one record, one child).
        world.worker.run_until_idle()
        more = [ELERI | {"given_name": "Ela"}, ELERI | {"given_name": "Efa"}]
        assert send(client, world.health_board, payload(world.health_board.id, more)).status_code == 201
        world.worker.run_until_idle()
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/matching/reviews", params=params, headers=as_officer(world.la)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) >= 2
        bad = client.get(
            "/v1/matching/reviews", params={"cursor": "not-a-cursor"}, headers=as_officer(world.la)
        )
        assert bad.status_code == 400


class TestRealtime:
    def query(self, client: TestClient, partner: TestPartner, *records: dict[str, Any]) -> httpx.Response:
        response: httpx.Response = client.post(
            "/v1/match", json={"records": list(records)}, headers=as_officer(partner)
        )
        return response

    def test_own_la_sees_detail_other_la_only_known(
        self, world: World, session: Session, client: TestClient
    ) -> None:
        response = self.query(client, world.la, SIAN, DAFYDD, TOMOS)
        assert response.status_code == 200, response.text
        sian, dafydd, tomos = response.json()["results"]
        own = sian["candidates"][0]
        assert (
            own["la_id"] == PILOT_LA
            and own["register_type"] == "school_roll"
            and own["school_number"] == "6602001"
        )
        assert own["outcome"] == "matched" and own["education_child_id"] is not None
        assert levels(own["explanation"])["dob"] == "exact"
        assert dafydd["candidates"] == [{"la_id": OTHER_PILOT_LA, "known": True}]
        assert tomos["candidates"] == []
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "matching.realtime.query")
        ).one()
        assert audit.object_ids == [str(own["education_child_id"])]

    def test_a_larger_query_is_matched_off_the_event_loop_with_the_same_answers(
        self, world: World, session: Session, client: TestClient
    ) -> None:
        few = self.query(client, world.la, SIAN, DAFYDD, TOMOS).json()["results"]
        records = [SIAN, DAFYDD, TOMOS] * 2
        assert len(records) > service.MATCH_IN_LOOP_RECORDS
        many = self.query(client, world.la, *records).json()["results"]
        assert [r["candidates"] for r in many] == [r["candidates"] for r in few] * 2
        assert [r["record_index"] for r in many] == list(range(6))
        shown = session.scalars(
            select(AuditEvent.object_ids)
            .where(AuditEvent.action == "matching.realtime.query")
            .order_by(AuditEvent.seq)
        ).all()
        sian = str(few[0]["candidates"][0]["education_child_id"])
        assert shown == [[sian], [sian, sian]]

    def test_non_la_caller_is_refused(self, world: World, client: TestClient) -> None:
        response = client.post(
            "/v1/match",
            json={"records": [SIAN]},
            headers=auth_header(world.health_board.key, world.health_board.id),
        )
        assert response.status_code == 403

    def test_at_most_one_hundred_records(self, world: World, client: TestClient) -> None:
        assert self.query(client, world.la, *([TOMOS] * 101)).status_code == 422
        assert client.post("/v1/match", json={"records": []}, headers=as_officer(world.la)).status_code == 422

    def test_index_follows_register_changes(self, world: World, client: TestClient, engine: Engine) -> None:
        holder = RealtimeIndexHolder(make_session_factory(engine), check_seconds=0)
        client.app.state.match_index = holder  # type: ignore[attr-defined]
        assert self.query(client, world.la, TOMOS).json()["results"][0]["candidates"] == []
        roll = payload(
            world.la.id, [on_roll(TOMOS, "6602002")], kind="school_roll", recipient=None, scope="6602002"
        )
        assert send(client, world.la, roll).status_code == 201
        world.worker.run_until_idle()
        holder.current()  # notices the new generation and starts a rebuild; the old index keeps serving
        holder.wait_for_rebuild()
        found = self.query(client, world.la, TOMOS).json()["results"][0]["candidates"]
        assert [c["school_number"] for c in found] == ["6602002"]
