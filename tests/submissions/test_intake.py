"""Signed intake over HTTP against PostgreSQL: routing, validation, idempotency, all-or-nothing storage."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.jobs.models import Job
from app.submissions import repository
from app.submissions.models import EducationChild, HealthChild, Submission
from tests.submissions.conftest import NON_PILOT_LA, PILOT_LA, child, payload, pupil
from tests.support.jws import verify_service_jws
from tests.support.partners import TestPartner
from tests.support.tokens import auth_header, signed_body

JOSE = {"Content-Type": "application/jose"}
AS_CHILD_DOB = dt.date(2014, 6, 2)  # `child()`'s birth date


def send(client: TestClient, partner: TestPartner, body: dict[str, Any] | bytes, **kw: Any) -> httpx.Response:
    signed = body if isinstance(body, bytes) else signed_body(partner.key, body)
    headers = {**JOSE, **auth_header(partner.key, partner.id), **kw.pop("headers", {})}
    response: httpx.Response = client.post("/v1/submissions", content=signed, headers=headers, **kw)
    return response


def count(session: Session, model: type[Any]) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def verify_receipt(client: TestClient, receipt_jws: str) -> dict[str, Any]:
    """Verify the service's receipt signature independently, with the published JWKS."""
    return verify_service_jws(client, receipt_jws, "cme-receipt+jws")


class TestAcceptedSubmission:
    def test_health_register_is_stored_with_a_signed_receipt(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, [child(), child(given_name="Dafydd", date_of_birth="2012-01-15")])
        response = send(client, health_board, body)
        assert response.status_code == 201, response.text
        result = response.json()
        receipt = result["receipt"]
        assert receipt["submission_id"] == body["submission_id"]
        assert (receipt["record_count"], receipt["accepted"], receipt["flagged"], receipt["rejected"]) == (
            2,
            2,
            0,
            0,
        )
        assert receipt["records"] == []
        assert verify_receipt(client, result["receipt_jws"]) == receipt
        assert count(session, HealthChild) == 2
        stored = session.scalars(select(HealthChild).order_by(HealthChild.record_index)).all()
        assert stored[0].given_name == "Siân" and stored[0].middle_names == "Gwenllïan"  # diacritics kept
        assert stored[0].family_name == "Prys-Jones"
        assert stored[0].postcode_norm == "LL77 7AA"
        assert stored[0].recipient_la == PILOT_LA
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "submission.stored")).one()
        assert (event.partner_id, event.object_ids) == (health_board.id, [body["submission_id"]])

    def test_signature_evidence_is_kept(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        signed = signed_body(health_board.key, payload(health_board.id, [child()]))
        assert send(client, health_board, signed).status_code == 201
        submission = session.scalars(select(Submission)).one()
        import hashlib

        assert submission.jws_sha256 == hashlib.sha256(signed).hexdigest()
        assert submission.signer_kid == health_board.key.kid
        assert submission.signer_thumbprint == health_board.key.thumbprint
        assert submission.jws_header["typ"] == "cme-submission+jws"

    def test_health_register_enqueues_a_matching_job_visible_to_sender_and_recipient(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(client, health_board, payload(health_board.id, [child()]))
        job_id = response.json()["job_id"]
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None and job.kind == "match_health_list" and job.status == "queued"
        for partner in (health_board, pilot_la):
            seen = client.get(f"/v1/jobs/{job_id}", headers=auth_header(partner.key, partner.id))
            assert seen.status_code == 200 and seen.json()["status"] == "queued"

    def test_sender_reads_status_others_get_404(
        self, client: TestClient, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, [child()])
        send(client, health_board, body)
        own = client.get(
            f"/v1/submissions/{body['submission_id']}", headers=auth_header(health_board.key, health_board.id)
        )
        assert own.status_code == 200
        assert own.json()["receipt"]["submission_id"] == body["submission_id"]
        other = client.get(
            f"/v1/submissions/{body['submission_id']}", headers=auth_header(pilot_la.key, pilot_la.id)
        )
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"


class TestIdempotency:
    def test_same_submission_twice_is_stored_once_with_the_original_receipt(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, [child(), child(given_name="Ioan")])
        first = send(client, health_board, body)
        # Re-signed: ES256 signatures differ every time, the content does not.
        second = send(client, health_board, body)
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json()["receipt"] == first.json()["receipt"]
        assert second.json()["receipt_jws"] == first.json()["receipt_jws"]
        assert count(session, Submission) == 1
        assert count(session, HealthChild) == 2
        assert count(session, Job) == 1

    def test_same_id_with_different_content_is_409(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        submission_id = uuid.uuid4()
        assert (
            send(
                client, health_board, payload(health_board.id, [child()], submission_id=submission_id)
            ).status_code
            == 201
        )
        changed = payload(health_board.id, [child(given_name="Osian")], submission_id=submission_id)
        response = send(client, health_board, changed)
        assert response.status_code == 409
        assert response.json()["type"] == "urn:cme-hub:problem:submission-id-conflict"
        assert count(session, HealthChild) == 1

    def test_concurrent_identical_submissions_store_once(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, [child(given_name=f"Plentyn{i}") for i in range(200)])
        statuses: list[int] = []

        def post() -> None:
            statuses.append(send(client, health_board, body).status_code)

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 200, 200, 201]
        assert count(session, Submission) == 1
        assert count(session, HealthChild) == 200


class TestRouting:
    def test_payload_sender_must_be_the_signer(
        self, client: TestClient, health_board: TestPartner, gp_practice: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(client, gp_practice, payload(health_board.id, [child()]))
        assert response.status_code == 403
        assert response.json()["type"] == "urn:cme-hub:problem:sender-mismatch"

    def test_body_signed_by_another_partner_is_refused(
        self, client: TestClient, health_board: TestPartner, gp_practice: TestPartner, pilot_la: TestPartner
    ) -> None:
        signed = signed_body(health_board.key, payload(health_board.id, [child()]))
        response = send(client, gp_practice, signed)
        assert response.status_code == 401
        assert response.json()["type"] == "urn:cme-hub:problem:unauthorized"

    @pytest.mark.parametrize(
        ("sender_fixture", "kind", "recipient"),
        [
            ("pilot_la", "health_register", PILOT_LA),  # an LA does not send health lists
            ("health_board", "health_register", NON_PILOT_LA),  # health lists go to pilot LAs only
            ("gp_practice", "school_roll", None),  # only LAs and independent schools send rolls
            ("health_board", "ehe_register", None),
            ("pilot_la", "school_roll", "W06000002"),  # an LA sends its own registers
        ],
    )
    def test_kind_and_recipient_not_allowed(
        self,
        request: pytest.FixtureRequest,
        client: TestClient,
        session: Session,
        non_pilot_la: TestPartner,
        other_la: TestPartner,
        sender_fixture: str,
        kind: str,
        recipient: str | None,
    ) -> None:
        sender: TestPartner = request.getfixturevalue(sender_fixture)
        request.getfixturevalue("pilot_la")
        record = pupil() if kind == "school_roll" else child(sex="F") if kind == "ehe_register" else child()
        response = send(client, sender, payload(sender.id, [record], kind=kind, recipient=recipient))
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "urn:cme-hub:problem:route-not-allowed"
        assert count(session, Submission) == 0

    def test_independent_school_roll_joins_its_la_register(
        self, client: TestClient, session: Session, independent_school: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(
            client, independent_school, payload(independent_school.id, [pupil()], kind="school_roll")
        )
        assert response.status_code == 201, response.text
        row = session.scalars(select(EducationChild)).one()
        assert (row.register, row.la_id, row.school_number, row.sex) == (
            "school_roll",
            PILOT_LA,
            "6602001",
            "F",
        )


class TestStructuralErrors:
    def test_wrong_type_names_record_index_and_field_and_stores_nothing(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        body = payload(health_board.id, [child(), child(), child(date_of_birth="not-a-date")])
        response = send(client, health_board, body)
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "urn:cme-hub:problem:invalid-submission"
        assert {"record_index": 2, "field": "date_of_birth"}.items() <= problem["errors"][0].items()
        assert count(session, Submission) == 0 and count(session, HealthChild) == 0

    def test_control_characters_are_refused_by_record_and_field(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        """PostgreSQL cannot store a NUL: without this check the whole batch failed at COPY with a 500."""
        records = [
            child(),
            child(given_name="Si\u0000ân"),
            child(address={"lines": ["1 Stryd\nFawr"], "postcode": "LL77 7AA"}),
            child(family_name="Jones\u007f"),
        ]
        response = send(client, health_board, payload(health_board.id, records))
        assert response.status_code == 422, response.text
        errors = [(e["record_index"], e["field"], e["code"]) for e in response.json()["errors"]]
        assert errors == [
            (1, "given_name", "control_character"),
            (2, "address.lines.0", "control_character"),
            (3, "family_name", "control_character"),
        ]
        assert "control characters" in response.json()["errors"][0]["message"]
        assert count(session, Submission) == 0 and count(session, HealthChild) == 0
        # Letters from any script, and invisible format characters, are not control characters.
        fine = send(client, health_board, payload(health_board.id, [child(given_name="Олександр\u200b")]))
        assert fine.status_code == 201, fine.text

    def test_unknown_field_is_refused_not_dropped(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(client, health_board, payload(health_board.id, [child(), child(religion="x")]))
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert (error["record_index"], error["field"], error["code"]) == (1, "religion", "extra_forbidden")

    def test_nested_field_path_is_reported(
        self, client: TestClient, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        bad = child(address={"lines": ["1 Stryd Fawr"], "postcode": "LL77 7AA", "country": "Cymru"})
        error = send(client, health_board, payload(health_board.id, [bad])).json()["errors"][0]
        assert (error["record_index"], error["field"]) == (0, "address.country")

    def test_unknown_kind(self, client: TestClient, health_board: TestPartner, pilot_la: TestPartner) -> None:
        response = send(client, health_board, payload(health_board.id, [child()], kind="gp_list"))
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "union_tag_invalid"

    def test_malformed_json(
        self, client: TestClient, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(client, health_board, signed_body(health_board.key, b'{"kind": "health_register",'))
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "json_invalid"

    def test_wrong_content_type_is_415(self, client: TestClient, health_board: TestPartner) -> None:
        body = signed_body(health_board.key, payload(health_board.id, [child()]))
        headers = {"Content-Type": "application/json", **auth_header(health_board.key, health_board.id)}
        response = client.post("/v1/submissions", content=body, headers=headers)
        assert response.status_code == 415

    def test_oversized_body_is_413_before_it_is_read(
        self, client: TestClient, session: Session, health_board: TestPartner
    ) -> None:
        # The test settings cap bodies at 2 MiB.
        response = send(client, health_board, b"x" * (3 * 1024 * 1024))
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert count(session, Submission) == 0

    def test_oversized_body_without_content_length_is_413(
        self, client: TestClient, health_board: TestPartner
    ) -> None:
        def chunks() -> Any:
            for _ in range(30):
                yield b"y" * (100 * 1024)

        headers = {**JOSE, **auth_header(health_board.key, health_board.id)}
        response = client.post("/v1/submissions", content=chunks(), headers=headers)
        assert response.status_code == 413


class TestRecordFates:
    def test_every_record_fate_is_reported_and_rejected_records_are_not_stored(
        self, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        records = [
            child(),  # 0 accepted
            child(given_name=None, family_name=None),  # 1 rejected: missing name
            child(
                address={"lines": ["2 Ffordd y Môr"], "postcode": "LL77 XYZ"}
            ),  # 2 flagged: invalid postcode
            child(date_of_birth="2008-01-01"),  # 3 rejected: 17, outside CSA
            child(date_of_birth=None),  # 4 rejected: no DOB
            child(given_name=None),  # 5 flagged: partial name
            child(address=None),  # 6 flagged: no postcode
            child(date_of_birth="2026-01-01"),  # 7 rejected: born after as-of
        ]
        response = send(client, health_board, payload(health_board.id, records))
        assert response.status_code == 201, response.text
        receipt = response.json()["receipt"]
        assert (receipt["accepted"], receipt["flagged"], receipt["rejected"]) == (1, 3, 4)
        fates = {r["record_index"]: (r["fate"], [i["code"] for i in r["issues"]]) for r in receipt["records"]}
        assert fates == {
            1: ("rejected", ["missing_name"]),
            2: ("flagged", ["invalid_postcode"]),
            3: ("rejected", ["outside_compulsory_school_age"]),
            4: ("rejected", ["missing_date_of_birth"]),
            5: ("flagged", ["partial_name"]),
            6: ("flagged", ["missing_postcode"]),
            7: ("rejected", ["date_of_birth_in_future"]),
        }
        stored = {row.record_index: row for row in session.scalars(select(HealthChild))}
        assert sorted(stored) == [0, 2, 5, 6]
        assert stored[2].postcode == "LL77 XYZ" and stored[2].postcode_norm is None
        assert stored[2].flags == ["invalid_postcode"]

    def test_education_register_keeps_every_record_that_identifies_a_child(
        self, client: TestClient, session: Session, pilot_la: TestPartner
    ) -> None:
        # Decision 0004: an education record is evidence that education knows the child, even when
        # incomplete. Only a record naming nobody is refused. (This replaced a test asserting that a
        # birth date giving an implausible age was rejected.)
        records = [
            pupil(),  # 0 accepted
            pupil(date_of_birth="2008-06-01"),  # 1 flagged: just outside CSA, kept as sent
            pupil(date_of_birth="1990-01-01"),  # 2 flagged: implausible age, the date is not stored
            pupil(date_of_birth=None),  # 3 flagged: no birth date
            pupil(date_of_birth="2026-01-01"),  # 4 flagged: born after as-of, the date is not stored
            pupil(address=None),  # 5 flagged: no address
            pupil(family_name=None, date_of_birth=None, address=None),  # 6 flagged: a given name alone
            pupil(given_name=None, family_name=None),  # 7 rejected: names nobody
        ]
        response = send(client, pilot_la, payload(pilot_la.id, records, kind="school_roll", recipient=None))
        assert response.status_code == 201, response.text
        receipt = response.json()["receipt"]
        assert (receipt["accepted"], receipt["flagged"], receipt["rejected"]) == (1, 6, 1)
        fates = {r["record_index"]: (r["fate"], [i["code"] for i in r["issues"]]) for r in receipt["records"]}
        assert fates == {
            1: ("flagged", ["outside_compulsory_school_age"]),
            2: ("flagged", ["implausible_date_of_birth"]),
            3: ("flagged", ["missing_date_of_birth"]),
            4: ("flagged", ["date_of_birth_in_future"]),
            5: ("flagged", ["missing_postcode"]),
            6: ("flagged", ["partial_name", "missing_date_of_birth", "missing_postcode"]),
            7: ("rejected", ["missing_name"]),
        }
        messages = {r["record_index"]: r["issues"][0]["message"] for r in receipt["records"]}
        assert messages[2].endswith("it was not stored.") and messages[4].endswith("it was not stored.")
        assert not messages[1].endswith("it was not stored.")
        session.expire_all()
        stored = {row.record_index: row for row in session.scalars(select(EducationChild))}
        assert sorted(stored) == [0, 1, 2, 3, 4, 5, 6]
        born = {index: row.date_of_birth for index, row in stored.items()}
        assert born == {
            0: AS_CHILD_DOB,
            1: dt.date(2008, 6, 1),
            2: None,
            3: None,
            4: None,
            5: AS_CHILD_DOB,
            6: None,
        }
        assert stored[2].flags == ["implausible_date_of_birth"]
        assert stored[3].flags == ["missing_date_of_birth"]
        assert (stored[5].postcode, stored[5].postcode_norm, stored[5].address_lines) == (None, None, [])
        assert (stored[6].given_name, stored[6].family_name) == ("Siân", None)

    def test_an_education_record_without_names_is_kept_when_its_nhs_number_is_valid(
        self, app: Any, client: TestClient, session: Session, pilot_la: TestPartner
    ) -> None:
        app.state.settings = app.state.settings.model_copy(update={"nhs_number_enabled": True})
        records = [
            pupil(given_name=None, family_name=None, nhs_number="9434765919"),  # 0 flagged: identified
            pupil(given_name=None, family_name=None, nhs_number="9434765918"),  # 1 rejected: invalid number
        ]
        response = send(client, pilot_la, payload(pilot_la.id, records, kind="school_roll", recipient=None))
        assert response.status_code == 201, response.text
        fates = {
            r["record_index"]: (r["fate"], [i["code"] for i in r["issues"]])
            for r in response.json()["receipt"]["records"]
        }
        assert fates == {
            0: ("flagged", ["missing_name"]),
            1: ("rejected", ["missing_name", "invalid_nhs_number"]),
        }
        session.expire_all()
        assert [(r.record_index, r.nhs_number) for r in session.scalars(select(EducationChild))] == [
            (0, "9434765919")
        ]


class TestNhsNumber:
    def test_refused_when_the_deployment_has_not_switched_it_on(
        self, client: TestClient, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        response = send(client, health_board, payload(health_board.id, [child(nhs_number="9434765919")]))
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert (error["record_index"], error["field"]) == (0, "nhs_number")

    def test_validated_with_modulus_11_when_switched_on(
        self, app: Any, client: TestClient, session: Session, health_board: TestPartner, pilot_la: TestPartner
    ) -> None:
        app.state.settings = app.state.settings.model_copy(update={"nhs_number_enabled": True})
        records = [child(nhs_number="943 476 5919"), child(nhs_number="9434765918")]
        receipt = send(client, health_board, payload(health_board.id, records)).json()["receipt"]
        assert receipt["records"] == [
            {
                "record_index": 1,
                "fate": "flagged",
                "issues": [
                    {
                        "field": "nhs_number",
                        "code": "invalid_nhs_number",
                        "message": "The NHS number fails its modulus-11 check; it was not stored.",
                    }
                ],
            }
        ]
        numbers = {r.record_index: r.nhs_number for r in session.scalars(select(HealthChild))}
        assert numbers == {0: "9434765919", 1: None}


class TestAllOrNothing:
    def test_failure_in_the_middle_of_a_batch_leaves_nothing(
        self,
        client: TestClient,
        session: Session,
        health_board: TestPartner,
        pilot_la: TestPartner,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        real_insert = repository.insert_rows

        def failing_rows(session_: Session, model: Any, columns: Any, rows: Any) -> None:
            def rows_then_fail() -> Any:
                for i, row in enumerate(rows):
                    if i == 150:
                        raise RuntimeError("injected failure mid-batch")
                    yield row

            real_insert(session_, model, columns, rows_then_fail())

        monkeypatch.setattr(repository, "insert_rows", failing_rows)
        body = payload(health_board.id, [child(given_name=f"Plentyn{i}") for i in range(300)])
        failing_client = TestClient(client.app, raise_server_exceptions=False)
        response = send(failing_client, health_board, body)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert (count(session, Submission), count(session, HealthChild), count(session, Job)) == (0, 0, 0)
        assert count(session, AuditEvent) == 0  # the audit event rolled back with the work it describes
        monkeypatch.setattr(repository, "insert_rows", real_insert)
        assert send(client, health_board, body).status_code == 201
        assert count(session, HealthChild) == 300


class TestRegisterSnapshots:
    def test_a_new_roll_replaces_the_previous_snapshot_of_the_same_scope(
        self, client: TestClient, session: Session, pilot_la: TestPartner
    ) -> None:
        def roll(names: list[str], scope: str) -> dict[str, Any]:
            return payload(
                pilot_la.id,
                [pupil(given_name=n) for n in names],
                kind="school_roll",
                recipient=None,
                scope=scope,
            )

        assert send(client, pilot_la, roll(["Alys", "Efa"], "6602001")).status_code == 201
        assert send(client, pilot_la, roll(["Mabli"], "6602002")).status_code == 201
        assert send(client, pilot_la, roll(["Alys", "Efa", "Nansi"], "6602001")).status_code == 201
        names = sorted(r.given_name or "" for r in session.scalars(select(EducationChild)))
        assert names == ["Alys", "Efa", "Mabli", "Nansi"]
        superseded = session.scalars(select(Submission).where(Submission.superseded_at.is_not(None))).all()
        assert len(superseded) == 1
