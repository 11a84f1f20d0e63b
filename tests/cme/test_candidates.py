"""Reg 3: unmatched health-list children become candidates; an officer confirms (record) or resolves them."""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme.models import CmeCandidate, CmeEvent, CmeRecord
from app.cme.records import CHILD_FIELDS
from tests.cme.conftest import CONFIRM, LA_A, LA_B, Headers, child, confirm, open_candidates


class TestOpenCandidates:
    def test_r3_unmatched_children_become_open_candidates_of_the_la(self, session: Session) -> None:
        ids = open_candidates(session, LA_A, [child(), child("Osian", "Huws", dt.date(2013, 11, 20))])
        rows = session.scalars(select(CmeCandidate).order_by(CmeCandidate.family_name)).all()
        assert {row.id for row in rows} == set(ids) and len(ids) == 2
        assert {(row.la_id, row.status, row.sightings) for row in rows} == {(LA_A, "open", 1)}
        assert rows[1].postcode_district == "CF10" and rows[1].former_names == [
            {"given_name": None, "family_name": "Rees"}
        ]

    def test_same_child_twice_in_one_batch_is_one_candidate(self, session: Session) -> None:
        first, second = open_candidates(session, LA_A, [child(), child("ELIN", "pritchard")])
        assert first == second
        candidate = session.get(CmeCandidate, first)
        assert candidate is not None and candidate.sightings == 2

    def test_same_child_in_another_la_is_another_candidate(self, session: Session) -> None:
        (a,) = open_candidates(session, LA_A, [child()])
        (b,) = open_candidates(session, LA_B, [child()])
        assert a != b

    def test_link_id_links_a_child_whose_details_differ(self, session: Session) -> None:
        (first,) = open_candidates(session, LA_A, [child()])
        (second,) = open_candidates(session, LA_A, [child("Ellen", "Prichard", link_id=first)])
        assert second == first

    def test_link_id_of_another_la_is_ignored(self, session: Session) -> None:
        (foreign,) = open_candidates(session, LA_B, [child()])
        (own,) = open_candidates(session, LA_A, [child("Ellen", "Prichard", link_id=foreign)])
        assert own != foreign

    def test_child_without_dob_is_never_linked_by_name(self, session: Session) -> None:
        first, second = open_candidates(session, LA_A, [child(dob=None), child(dob=None)])
        assert first != second

    def test_rerunning_the_same_health_rows_returns_the_same_ids(self, session: Session) -> None:
        submission = uuid.uuid4()
        rows = [child(health_child_id=1), child("Osian", "Huws", dob=None, health_child_id=2)]
        first = open_candidates(session, LA_A, rows, submission_id=submission)
        assert open_candidates(session, LA_A, rows, submission_id=submission) == first
        assert len(session.scalars(select(CmeCandidate)).all()) == 2

    def test_child_with_an_active_record_is_linked_to_the_record(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        record_id = confirm(client, headers, candidate_id)["id"]
        (linked,) = open_candidates(session, LA_A, [child()])
        assert str(linked) == record_id
        history = client.get(f"/v1/cme/records/{record_id}/history", headers=headers()).json()
        assert [event["action"] for event in history["events"]] == ["included", "sighted"]

    def test_opening_is_audited_with_ids_and_no_actor(self, session: Session) -> None:
        ids = open_candidates(session, LA_A, [child(), child()])
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [(e.action, e.partner_id, e.object_ids) for e in events] == [
            ("cme.candidate.open", None, [str(ids[0])]),
            ("cme.candidate.link", None, [str(ids[0])]),
        ]


class TestBulkOpening:
    """A matching round hands an LA tens of thousands of children at once: set-based, whatever the mix."""

    def test_a_mixed_batch_links_known_children_and_opens_the_rest(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (waiting,) = open_candidates(session, LA_A, [child("Osian", "Huws")])
        (confirmed,) = open_candidates(session, LA_A, [child("Mali", "Lloyd")])
        record_id = uuid.UUID(str(confirm(client, headers, confirmed)["id"]))
        batch = [
            child("Osian", "Huws"),  # an open candidate already
            child("MALI", "lloyd"),  # a CME record already
            child("Gwen", "Ellis"),  # new...
            child("gwen", "ELLIS"),  # ...and the same child again in this batch
            child("Cai", "Rees", dob=None),  # new, and never linked by name without a birth date
        ]
        before = session.scalar(select(func.max(CmeEvent.id)))
        ids = open_candidates(session, LA_A, batch)
        assert ids[:2] == [waiting, record_id] and ids[2] == ids[3] and len(set(ids)) == 4
        session.expire_all()
        sightings = {c.id: c.sightings for c in session.scalars(select(CmeCandidate))}
        assert sightings[waiting] == 2 and sightings[ids[2]] == 2 and sightings[ids[4]] == 1
        added = session.scalars(select(CmeEvent).where(CmeEvent.id > before)).all()
        assert sorted((str(e.subject_id), e.action) for e in added) == sorted(
            [(str(ids[2]), "opened"), (str(ids[4]), "opened"), (str(waiting), "sighted"),
             (str(record_id), "sighted"), (str(ids[2]), "sighted")]
        )  # fmt: skip
        audited = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2)).all()
        assert {e.action: set(e.object_ids) for e in audited} == {
            "cme.candidate.open": {str(ids[2]), str(ids[4])},
            "cme.candidate.link": {str(waiting), str(record_id), str(ids[2])},
        }

    def test_the_statements_do_not_grow_with_the_batch(self, session: Session, engine: Engine) -> None:
        def statements(n: int, family: str) -> int:
            executed: list[str] = []
            listener = lambda *args: executed.append(args[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            try:
                open_candidates(session, LA_A, [child(f"Plentyn{i}", family) for i in range(n)])
            finally:
                event.remove(engine, "before_cursor_execute", listener)
            return len(executed)

        assert statements(5, "Bach") == statements(500, "Mawr")


def _personal_values(row: CmeCandidate) -> list[object]:
    return [getattr(row, name) for name in CHILD_FIELDS]


class TestConfirm:
    def test_r3_2_confirm_creates_record_with_provenance_and_minimises_candidate(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        submission = uuid.uuid4()
        (candidate_id,) = open_candidates(session, LA_A, [child(health_child_id=7)], submission_id=submission)
        response = client.post(f"/v1/cme/candidates/{candidate_id}/confirm", json=CONFIRM, headers=headers())
        assert response.status_code == 201, response.text
        record = response.json()
        assert response.headers["Location"] == f"/v1/cme/records/{record['id']}"
        assert response.headers["ETag"] == f'"{record["version"]}"'
        assert (record["given_name"], record["family_name"], record["date_of_birth"]) == (
            "Elin",
            "Pritchard",
            "2014-03-02",
        )
        assert record["address"]["postcode"] == "CF10 1AA"
        assert record["national_curriculum_year"] == 7
        assert record["csa_removal_on"] == "2030-06-29"
        assert record["provenance"]["date_of_birth"]["source"] == "submission"
        assert record["provenance"]["date_of_birth"]["submission_id"] == str(submission)
        assert "middle_names" not in record["provenance"]  # nothing was submitted for it
        session.expire_all()
        stub = session.get(CmeCandidate, candidate_id)
        assert stub is not None
        assert (stub.status, stub.outcome, str(stub.record_id), stub.closed_by) == (
            "confirmed",
            "confirmed",
            record["id"],
            "officer-1",
        )
        assert _personal_values(stub) == [None] * len(CHILD_FIELDS) and stub.health_child_id is None

    def test_r3_4_decision_log_records_who_when_and_basis(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        record_id = confirm(client, headers, candidate_id)["id"]
        events = client.get(f"/v1/cme/records/{record_id}/history", headers=headers()).json()["events"]
        assert events == [
            {
                "at": "2025-10-06T09:30:00Z",
                "officer_id": "officer-1",
                "role": "case_officer",
                "action": "included",
                "reason": CONFIRM["basis"],
                "fields": ["reg3(a)", "reg3(b)", "reg3(c)"],
            }
        ]

    def test_r3_2_every_condition_must_be_affirmed(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        for condition in ("ordinarily_resident", "not_registered_pupil", "education_may_not_be_suitable"):
            body = CONFIRM | {condition: False}
            response = client.post(f"/v1/cme/candidates/{candidate_id}/confirm", json=body, headers=headers())
            assert response.status_code == 422
        assert session.scalars(select(CmeRecord)).all() == []

    def test_decided_candidate_cannot_be_decided_again(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        confirm(client, headers, candidate_id)
        again = client.post(
            f"/v1/cme/candidates/{candidate_id}/resolve", json={"outcome": "moved_away"}, headers=headers()
        )
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"

    def test_only_a_child_of_compulsory_school_age_can_be_included(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        """Today (frozen) is 2025-10-06: a child born in June 2021 is four, one born in March 2009 left
        compulsory school age at the end of June 2025. Neither becomes a record; the candidate stays open
        for the officer to resolve. A child whose birth date nobody knows rests on the officer's decision."""
        too_young, too_old, unknown, of_age = open_candidates(
            session, LA_A,
            [child("Nel", dob=dt.date(2021, 6, 1)), child("Osian", dob=dt.date(2009, 3, 2)),
             child("Cai", dob=None), child("Mabli", dob=dt.date(2020, 3, 31))],
        )  # fmt: skip
        for candidate_id, where in ((too_young, "below"), (too_old, "above")):
            refused = client.post(
                f"/v1/cme/candidates/{candidate_id}/confirm", json=CONFIRM, headers=headers()
            )
            assert refused.status_code == 409, refused.text
            problem = refused.json()
            assert problem["type"] == "urn:cme-hub:problem:not-compulsory-school-age"
            assert where in problem["detail"] and "not_compulsory_school_age" in problem["detail"]
            candidate = client.get(f"/v1/cme/candidates/{candidate_id}", headers=headers()).json()
            assert candidate["status"] == "open"
        assert session.scalars(select(CmeRecord)).all() == []
        confirm(client, headers, unknown)
        confirm(client, headers, of_age)  # five on 31 March 2025, a prescribed day: of age since then
        resolved = client.post(
            f"/v1/cme/candidates/{too_young}/resolve", json={"outcome": "not_compulsory_school_age"},
            headers=headers(),
        )  # fmt: skip
        assert resolved.status_code == 200, resolved.text

    def test_a_basis_with_a_control_character_is_refused_and_line_breaks_are_kept(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        url = f"/v1/cme/candidates/{candidate_id}/confirm"
        refused = client.post(url, json={**CONFIRM, "basis": "Visited\u0000 twice."}, headers=headers())
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert (error["field"], error["code"]) == ("basis", "control_character")
        basis = "Visited twice.\nNo school place since September."
        response = client.post(url, json={**CONFIRM, "basis": basis}, headers=headers())
        assert response.status_code == 201, response.text

    def test_data_protection_officer_may_read_but_not_decide(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        dpo = headers(LA_A, "data_protection_officer")
        assert client.get(f"/v1/cme/candidates/{candidate_id}", headers=dpo).status_code == 200
        response = client.post(
            f"/v1/cme/candidates/{candidate_id}/confirm",
            json=CONFIRM,
            headers=headers(LA_A, "data_protection_officer"),
        )
        assert response.status_code == 403


class TestResolve:
    def test_r3_5_resolved_candidate_keeps_outcome_and_loses_personal_data(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child(health_child_id=3)])
        response = client.post(
            f"/v1/cme/candidates/{candidate_id}/resolve",
            json={"outcome": "on_school_roll"},
            headers=headers(),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["outcome"], body["given_name"], body["address"]) == (
            "resolved",
            "on_school_roll",
            None,
            None,
        )
        session.expire_all()
        stub = session.get(CmeCandidate, candidate_id)
        assert stub is not None and _personal_values(stub) == [None] * len(CHILD_FIELDS)
        assert session.scalars(select(CmeRecord)).all() == []
        events = session.scalars(select(CmeEvent).where(CmeEvent.subject_id == candidate_id)).all()
        assert [(e.action, e.reason, e.fields) for e in events] == [
            ("opened", None, []),
            ("resolved", None, ["on_school_roll"]),
        ]

    def test_unknown_outcome_is_refused(self, session: Session, client: TestClient, headers: Headers) -> None:
        (candidate_id,) = open_candidates(session, LA_A, [child()])
        response = client.post(
            f"/v1/cme/candidates/{candidate_id}/resolve", json={"outcome": "bored"}, headers=headers()
        )
        assert response.status_code == 422

    def test_resolved_child_seen_again_opens_a_new_candidate(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        (first,) = open_candidates(session, LA_A, [child()])
        client.post(f"/v1/cme/candidates/{first}/resolve", json={"outcome": "moved_away"}, headers=headers())
        (second,) = open_candidates(session, LA_A, [child()])
        assert second != first
