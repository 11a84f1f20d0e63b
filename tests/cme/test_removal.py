"""Regs 6-11: removal grounds, legal clocks at their boundaries, the due view, reg 11 surfacing, removal."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.cme import removals
from app.cme.clocks import ClockSettings
from app.cme.config import CmeSettings, get_cme_settings
from app.cme.models import CmeRecord, CmeRecordStub
from app.wiring.models import metadata
from tests.cme.conftest import LA_A, Headers, make_record
from tests.support.clock import FrozenClock

NOW = dt.datetime(2025, 10, 6, 9, 30, tzinfo=dt.UTC)


def _ground(client: TestClient, headers: Headers, record_id: str, **body: Any) -> dict[str, Any]:
    payload = {"evidence": "Letter from the family, scanned to the case file."} | body
    response = client.post(f"/v1/cme/records/{record_id}/removal-events", json=payload, headers=headers())
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _etag(client: TestClient, headers: Headers, record_id: str) -> str:
    etag: str = client.get(f"/v1/cme/records/{record_id}", headers=headers()).headers["ETag"]
    return etag


def _duties(event: dict[str, Any]) -> list[tuple[str, int, str, str, str]]:
    return [(d["action"], d["regulation"], d["due_on"], d["warn_from"], d["basis"]) for d in event["duties"]]


class TestRemovalEvents:
    def test_r6_2_likely_move_starts_the_28_day_notify_clock_only(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        event = _ground(client, headers, record_id, ground="moved_to_another_la", became_aware_on="2025-10-01",
                        receiving_la="E09000033")  # fmt: skip
        assert _duties(event) == [("inform_receiving_la", 6, "2025-10-29", "2025-10-22", "statutory")]
        assert event["duties"][0]["confidence"] == "verified"
        assert (
            client.get(f"/v1/cme/records/{record_id}", headers=headers()).json()["status"]
            == "transfer_pending"
        )

    def test_r6_3_departure_adds_the_removal_clock_and_replaces_the_earlier_ones(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        _ground(client, headers, record_id, ground="moved_to_another_la", became_aware_on="2025-10-01")
        event = _ground(client, headers, record_id, ground="moved_to_another_la", became_aware_on="2025-10-01",
                        left_area_on="2025-10-03")  # fmt: skip
        # Left Friday 3 October: five working days later is Friday 10 October.
        assert _duties(event) == [  # soonest first
            ("remove_record", 6, "2025-10-10", "2025-10-03", "internal_target"),
            ("inform_receiving_la", 6, "2025-10-29", "2025-10-22", "statutory"),
        ]
        due = client.get("/v1/cme/due?before=2025-12-31", headers=headers()).json()["items"]
        assert len(due) == 2

    def test_asap_clock_skips_christmas_bank_holidays(
        self, session: Session, client: TestClient, headers: Headers, clock: FrozenClock
    ) -> None:
        record_id = make_record(session, client, headers)
        clock.current = dt.datetime(2025, 12, 19, 9, 30, tzinfo=dt.UTC)  # awareness is never in the future
        event = _ground(client, headers, record_id, ground="registered_pupil", became_aware_on="2025-12-19")
        # Fri 19 Dec: Mon 22, Tue 23, Wed 24, (25, 26 bank holidays), Mon 29, Tue 30.
        assert _duties(event) == [("remove_record", 7, "2025-12-30", "2025-12-19", "internal_target")]
        assert event["duties"][0]["confidence"] == "assumption"

    def test_asap_target_is_configurable(
        self, session: Session, client: TestClient, headers: Headers, app: FastAPI
    ) -> None:
        app.dependency_overrides[get_cme_settings] = lambda: CmeSettings(asap_working_days=2)
        record_id = make_record(session, client, headers)
        event = _ground(client, headers, record_id, ground="died", became_aware_on="2025-10-03")
        assert _duties(event) == [("remove_record", 9, "2025-10-07", "2025-10-03", "internal_target")]

    def test_move_details_on_another_ground_are_refused(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        response = client.post(
            f"/v1/cme/records/{record_id}/removal-events",
            json={
                "ground": "died",
                "became_aware_on": "2025-10-01",
                "left_area_on": "2025-10-01",
                "evidence": "x y z",
            },
            headers=headers(),
        )
        assert response.status_code == 409

    def test_unknown_ground_is_refused(self, session: Session, client: TestClient, headers: Headers) -> None:
        record_id = make_record(session, client, headers)
        response = client.post(
            f"/v1/cme/records/{record_id}/removal-events",
            json={"ground": "bored", "became_aware_on": "2025-10-01", "evidence": "x y z"},
            headers=headers(),
        )
        assert response.status_code == 422


class TestDueView:
    @pytest.mark.parametrize(
        ("today", "state"),
        [
            (dt.date(2025, 10, 21), "not_due"),
            (dt.date(2025, 10, 22), "approaching"),
            (dt.date(2025, 10, 28), "approaching"),
            (dt.date(2025, 10, 29), "due_today"),
            (dt.date(2025, 10, 30), "overdue"),
        ],
    )
    def test_r6_2_notify_clock_state_at_its_boundaries(
        self,
        today: dt.date,
        state: str,
        session: Session,
        client: TestClient,
        headers: Headers,
        clock: FrozenClock,
    ) -> None:
        record_id = make_record(session, client, headers)
        _ground(client, headers, record_id, ground="moved_to_another_la", became_aware_on="2025-10-01")
        clock.current = dt.datetime.combine(today, dt.time(9), tzinfo=dt.UTC)
        body = client.get("/v1/cme/due?before=2025-12-31", headers=headers()).json()
        assert body["today"] == today.isoformat()
        assert [(item["record_id"], item["state"]) for item in body["items"]] == [(record_id, state)]

    def test_due_view_lists_clocks_due_by_the_date_overdue_included(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        early = make_record(session, client, headers, given="Cai")
        late = make_record(session, client, headers, given="Nia")
        _ground(
            client, headers, early, ground="registered_pupil", became_aware_on="2025-09-01"
        )  # overdue now
        _ground(
            client, headers, late, ground="moved_to_another_la", became_aware_on="2025-10-01"
        )  # due 29 Oct

        def due(before: str) -> list[str]:
            return [
                item["record_id"]
                for item in client.get(f"/v1/cme/due?before={before}", headers=headers()).json()["items"]
            ]

        assert due("2025-10-28") == [early]
        assert due("2025-10-29") == [early, late]
        assert client.get("/v1/cme/due", headers=headers()).json()["items"][0]["state"] == "overdue"


class TestSurfaceDue:
    def test_r11_2_clock_starts_on_the_first_day_above_csa_and_only_once(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)  # born 2 March 2014: CSA ends Fri 28 June 2030
        assert removals.surface_due(session, dt.date(2030, 6, 28), now=NOW) == []
        surfaced = removals.surface_due(session, dt.date(2030, 6, 29), now=NOW)
        session.commit()
        assert [str(i) for i in surfaced] == [record_id]
        assert removals.surface_due(session, dt.date(2030, 7, 1), now=NOW) == []
        due = client.get("/v1/cme/due?before=2030-12-31", headers=headers()).json()["items"]
        # Saturday 29 June + five working days.
        assert [(d["ground"], d["regulation"], d["due_on"], d["warn_from"]) for d in due] == [
            ("ceased_compulsory_school_age", 11, "2030-07-05", "2030-06-29")
        ]

    def test_r11_2_surfacing_uses_the_configured_target(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        make_record(session, client, headers)
        removals.surface_due(
            session, dt.date(2030, 6, 29), now=NOW, clocks=ClockSettings(asap_working_days=1)
        )
        session.commit()
        due = client.get("/v1/cme/due?before=2030-12-31", headers=headers()).json()["items"]
        assert [d["due_on"] for d in due] == ["2030-07-01"]

    def test_r11_record_without_dob_is_never_surfaced(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        make_record(session, client, headers, dob=None)
        assert removals.surface_due(session, dt.date(2040, 1, 1), now=NOW) == []


PERSONAL_VALUES = (
    "Elin",
    "Pritchard",
    "Rees",
    "Heol Test",
    "Caerdydd",
    "CF10",
    "2014-03-02",
    "Rhian",
    "029 2000",
)


def _dump_my_tables(session: Session) -> str:
    """Every value in the audit and CME tables, as text."""
    session.expire_all()
    names = [t.name for t in metadata.sorted_tables if t.name.startswith("cme_") or t.name == "audit_event"]
    return "\n".join(
        str(row) for name in names for row in session.execute(text(f'SELECT * FROM "{name}"')).all()
    )


class TestRemoval:
    def test_r6_11_removal_is_a_hard_delete_leaving_a_non_identifying_stub(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        etag = _etag(client, headers, record_id)
        patch = {"reason": "From school nurse", "parents": [{"name": "Rhian", "phone": "029 2000 0000"}]}
        designated = headers(LA_A, "designated_officer")
        etag = client.patch(
            f"/v1/cme/records/{record_id}", json=patch, headers=designated | {"If-Match": etag}
        ).headers["ETag"]
        _ground(client, headers, record_id, ground="left_england_and_wales", became_aware_on="2025-10-02")
        response = client.post(
            f"/v1/cme/records/{record_id}/removal",
            json={"ground": "left_england_and_wales"},
            headers=headers() | {"If-Match": etag},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "id": record_id, "created_at": "2025-10-06T09:30:00Z", "removed_at": "2025-10-06T09:30:00Z",
            "ground": "left_england_and_wales", "regulation": 10, "became_aware_on": "2025-10-02",
            "remove_due_on": "2025-10-09",
        }  # fmt: skip
        assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 404
        assert client.get(f"/v1/cme/records/{record_id}/history", headers=headers()).status_code == 404
        assert client.get("/v1/cme/due?before=2030-01-01", headers=headers()).json()["items"] == []
        assert session.scalars(select(CmeRecord)).all() == []
        assert session.get(CmeRecordStub, record_id) is not None
        dump = _dump_my_tables(session)
        assert record_id in dump  # the stub and the audit trail remain...
        assert [value for value in PERSONAL_VALUES if value in dump] == []  # ...without the child's data

    def test_removal_needs_the_ground_recorded_first(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        response = client.post(
            f"/v1/cme/records/{record_id}/removal",
            json={"ground": "died"},
            headers=headers() | {"If-Match": _etag(client, headers, record_id)},
        )
        assert response.status_code == 409

    def test_r6_3_no_removal_before_the_child_has_left(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        _ground(client, headers, record_id, ground="moved_to_another_la", became_aware_on="2025-10-01")
        remove = {"ground": "moved_to_another_la"}
        response = client.post(
            f"/v1/cme/records/{record_id}/removal",
            json=remove,
            headers=headers() | {"If-Match": _etag(client, headers, record_id)},
        )
        assert response.status_code == 409
        _ground(
            client,
            headers,
            record_id,
            ground="moved_to_another_la",
            became_aware_on="2025-10-01",
            left_area_on="2025-10-04",
        )
        response = client.post(
            f"/v1/cme/records/{record_id}/removal",
            json=remove,
            headers=headers() | {"If-Match": _etag(client, headers, record_id)},
        )
        assert response.status_code == 200
        assert (response.json()["regulation"], response.json()["remove_due_on"]) == (6, "2025-10-10")

    def test_removal_requires_if_match(self, session: Session, client: TestClient, headers: Headers) -> None:
        record_id = make_record(session, client, headers)
        _ground(client, headers, record_id, ground="died", became_aware_on="2025-10-01")
        url = f"/v1/cme/records/{record_id}/removal"
        assert client.post(url, json={"ground": "died"}, headers=headers()).status_code == 428
        assert (
            client.post(url, json={"ground": "died"}, headers=headers() | {"If-Match": '"99"'}).status_code
            == 412
        )
        assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 200

    def test_r3_5_resolved_candidates_leave_no_personal_data(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        from tests.cme.conftest import child, open_candidates

        (candidate_id,) = open_candidates(session, LA_A, [child()])
        client.post(
            f"/v1/cme/candidates/{candidate_id}/resolve",
            json={"outcome": "education_suitable"},
            headers=headers(),
        )
        dump = _dump_my_tables(session)
        assert str(candidate_id) in dump
        assert [value for value in PERSONAL_VALUES if value in dump] == []


class TestFoundOnRegister:
    def test_r7_match_to_a_register_starts_the_clock_and_flags_candidates_but_removes_nothing(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        from tests.cme.conftest import LA_B, child, open_candidates

        record_id = make_record(session, client, headers, given="Cai")
        foreign_record = make_record(session, client, headers, LA_B, given="Nia")
        (candidate_id,) = open_candidates(session, LA_A, [child("Elin")])
        run_id = uuid.uuid4()
        removals.found_on_register(
            session, la_id=LA_A, candidate_ids=[candidate_id], record_ids=[uuid.UUID(record_id), uuid.UUID(foreign_record)],
            run_id=run_id, today=dt.date(2025, 10, 6), now=NOW,
        )  # fmt: skip
        session.commit()
        due = client.get("/v1/cme/due?before=2026-01-01", headers=headers()).json()["items"]
        assert [(d["record_id"], d["ground"], d["regulation"], d["due_on"]) for d in due] == [
            (record_id, "registered_pupil", 7, "2025-10-13")
        ]
        assert client.get("/v1/cme/due?before=2026-01-01", headers=headers(LA_B)).json()["items"] == []
        history = client.get(f"/v1/cme/candidates/{candidate_id}/history", headers=headers()).json()["events"]
        assert [e["action"] for e in history] == ["opened", "found_on_register"]
        assert client.get(f"/v1/cme/candidates/{candidate_id}", headers=headers()).json()["status"] == "open"
        assert client.get(f"/v1/cme/records/{record_id}", headers=headers()).status_code == 200
