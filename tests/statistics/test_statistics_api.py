"""GET /v1/statistics: access matrix, suppression at the 4/5 boundary, CSV shape, audit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.cme.domain import CandidateStatus
from app.cme.models import CmeCandidate, CmeRecordStub
from app.core.config import Settings
from app.partners import service as partners_service
from app.partners.models import PartnerKind
from app.partners.schemas import PartnerCreate
from app.statistics.service import WALES
from tests.cme.conftest import FROZEN_AT, HEALTH_BOARD, KEYS_VALID_FROM, LA_A, LA_B
from tests.support.clock import FrozenClock
from tests.support.partners import PILOT_LAS, register_test_key
from tests.support.tokens import auth_header

WG = "WG"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Only the two test LAs are pilot LAs, so each table has exactly the rows a test sets up."""
    return settings.model_copy(update={"pilot_las": list(PILOT_LAS)})


@pytest.fixture
def headers(session: Session, app: object) -> Headers:
    clock = FrozenClock(FROZEN_AT)
    app.state.clock = clock  # type: ignore[attr-defined]
    keys = {}
    for partner_id, kind in (
        (LA_A, PartnerKind.local_authority),
        (LA_B, PartnerKind.local_authority),
        (HEALTH_BOARD, PartnerKind.local_health_board),
        (WG, PartnerKind.welsh_government),
    ):
        partners_service.create_partner(
            session,
            PartnerCreate(id=partner_id, kind=kind, name="Test partner"),
            pilot_las=PILOT_LAS,
            now=FROZEN_AT,
        )
        session.commit()
        keys[partner_id] = register_test_key(session, partner_id, not_before=KEYS_VALID_FROM)

    def make(partner_id: str, role: str | None = None) -> dict[str, str]:
        claims = {"officer": {"id": "officer-1", "role": role}} if role else {}
        return auth_header(keys[partner_id], partner_id, now=clock.now(), claims=claims)

    return make


def _candidates(session: Session, la_id: str, count: int, *, closed_after_days: float | None = None) -> None:
    for _ in range(count):
        closed = closed_after_days is not None
        session.add(
            CmeCandidate(
                id=uuid.uuid4(),
                la_id=la_id,
                submission_id=uuid.uuid4(),
                sightings=1,
                status=CandidateStatus.RESOLVED if closed else CandidateStatus.OPEN,
                opened_at=FROZEN_AT - dt.timedelta(days=20),
                closed_at=FROZEN_AT - dt.timedelta(days=20 - closed_after_days) if closed else None,
                outcome="on_school_roll" if closed else None,
            )
        )
    session.commit()


def _cells(body: dict[str, object], area: str) -> dict[str, dict[str, object]]:
    areas = {a["area"]: a["measures"] for a in body["areas"]}  # type: ignore[attr-defined, index]
    cells: dict[str, dict[str, object]] = areas[area]
    return cells


class TestAccess:
    def test_welsh_government_sees_every_pilot_la_and_wales(
        self, client: TestClient, headers: Headers
    ) -> None:
        response = client.get("/v1/statistics", headers=headers(WG))
        assert response.status_code == 200, response.text
        assert [a["area"] for a in response.json()["areas"]] == [*PILOT_LAS, WALES]

    def test_welsh_government_may_ask_for_one_la(self, client: TestClient, headers: Headers) -> None:
        response = client.get("/v1/statistics", params={"la": LA_B}, headers=headers(WG))
        assert [a["area"] for a in response.json()["areas"]] == [LA_B, WALES]

    def test_an_la_statistics_role_sees_its_own_la(self, client: TestClient, headers: Headers) -> None:
        response = client.get("/v1/statistics", params={"la": LA_A}, headers=headers(LA_A, "statistics"))
        assert response.status_code == 200
        assert [a["area"] for a in response.json()["areas"]] == [LA_A, WALES]
        without_la = client.get("/v1/statistics", headers=headers(LA_A, "statistics"))
        assert [a["area"] for a in without_la.json()["areas"]] == [LA_A, WALES]

    def test_another_la_is_not_found_for_an_la(self, client: TestClient, headers: Headers) -> None:
        response = client.get("/v1/statistics", params={"la": LA_B}, headers=headers(LA_A, "statistics"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize("role", ["case_officer", "designated_officer", "data_protection_officer"])
    def test_la_officers_without_the_statistics_role_are_refused(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        response = client.get("/v1/statistics", params={"la": LA_A}, headers=headers(LA_A, role))
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"

    def test_a_health_board_is_refused(self, client: TestClient, headers: Headers) -> None:
        assert client.get("/v1/statistics", headers=headers(HEALTH_BOARD)).status_code == 403

    def test_no_token_is_401(self, client: TestClient) -> None:
        assert client.get("/v1/statistics").status_code == 401

    def test_every_read_is_audited(self, client: TestClient, headers: Headers, session: Session) -> None:
        client.get("/v1/statistics", params={"la": LA_A}, headers=headers(LA_A, "statistics"))
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "statistics.read")).all()
        assert [(e.partner_id, e.role, e.object_ids) for e in events] == [(LA_A, "statistics", [LA_A, WALES])]


class TestSuppression:
    def test_five_is_shown_four_is_suppressed_and_cannot_be_derived(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 5)
        _candidates(session, LA_B, 9)
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, LA_A)["candidates"] == {"value": 5, "suppressed": False}
        assert _cells(body, LA_B)["candidates"] == {"value": 9, "suppressed": False}
        assert _cells(body, WALES)["candidates"] == {"value": 14, "suppressed": False}

        session.delete(session.scalars(select(CmeCandidate).where(CmeCandidate.la_id == LA_A)).first())
        session.commit()
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, LA_A)["candidates"] == {"value": None, "suppressed": True}
        # Wales minus LA B would give LA A's 4: LA B goes too (secondary suppression), Wales stays.
        assert _cells(body, LA_B)["candidates"] == {"value": None, "suppressed": True}
        assert _cells(body, WALES)["candidates"] == {"value": 13, "suppressed": False}

    def test_the_la_view_shows_the_same_cells_as_the_wales_view(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 4)
        _candidates(session, LA_B, 9)
        every = client.get("/v1/statistics", headers=headers(WG)).json()
        own = client.get("/v1/statistics", headers=headers(LA_B, "statistics")).json()
        assert _cells(own, LA_B) == _cells(every, LA_B)
        assert _cells(own, WALES) == _cells(every, WALES)

    def test_median_days_to_resolution_needs_five_cases(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 4, closed_after_days=2)
        _candidates(session, LA_B, 5, closed_after_days=3)
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, LA_A)["median_days_to_resolution"] == {"value": None, "suppressed": True}
        assert _cells(body, LA_B)["median_days_to_resolution"] == {"value": 3.0, "suppressed": False}
        assert _cells(body, WALES)["median_days_to_resolution"] == {"value": 3.0, "suppressed": False}

    def test_removals_by_ground_and_deadlines_count_stubs(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        for la, count, late in ((LA_A, 10, 5), (LA_B, 12, 6)):
            for index in range(count):
                session.add(
                    CmeRecordStub(
                        id=uuid.uuid4(),
                        la_id=la,
                        created_at=FROZEN_AT - dt.timedelta(days=40),
                        removed_at=FROZEN_AT,
                        ground="died",
                        regulation=9,
                        became_aware_on=dt.date(2025, 9, 1),
                        remove_due_on=dt.date(2025, 10, 1) if index < late else dt.date(2025, 10, 20),
                    )
                )
        session.commit()
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, WALES)["removals_died"]["value"] == 22
        assert _cells(body, LA_A)["records_created"]["value"] == 10
        assert _cells(body, LA_A)["deadlines_met"]["value"] == 5
        assert _cells(body, LA_B)["deadlines_missed"]["value"] == 6
        assert _cells(body, WALES)["deadlines_met"]["value"] == 11


class TestCsv:
    def test_csv_has_a_header_a_row_per_area_and_marks_suppressed_cells(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 4)
        _candidates(session, LA_B, 9)
        response = client.get("/v1/statistics", params={"format": "csv"}, headers=headers(WG))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        json_body = client.get("/v1/statistics", headers=headers(WG)).json()
        header = next(csv.reader(io.StringIO(response.text)))
        assert header == ["area", "name", *json_body["measures"]]
        assert [row["area"] for row in rows] == [*PILOT_LAS, WALES]
        by_area = {row["area"]: row for row in rows}
        assert by_area[LA_A]["candidates"] == "c" and by_area[LA_B]["candidates"] == "c"
        assert by_area[WALES]["candidates"] == "13"
        assert by_area[WALES]["name"] == "Wales"

    def test_an_unknown_format_is_a_problem(self, client: TestClient, headers: Headers) -> None:
        response = client.get("/v1/statistics", params={"format": "xlsx"}, headers=headers(WG))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
