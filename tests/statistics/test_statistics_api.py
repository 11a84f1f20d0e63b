"""GET /v1/statistics: access matrix, suppression at the 4/5 boundary, rounding to 5, month ends and
monthly flows, `as_of` validation, CSV shape, audit.

The clock reads 6 October 2025 (FROZEN_AT) unless a test moves it, so the default figures are as of
30 September 2025; data dated FROZEN_AT itself shows only once October has ended.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable
from typing import Any

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
from tests.cme.conftest import FROZEN_AT, HEALTH_BOARD, KEYS_VALID_FROM, LA_A, LA_B, make_record
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
def clock(app: object) -> FrozenClock:
    frozen = FrozenClock(FROZEN_AT)
    app.state.clock = frozen  # type: ignore[attr-defined]
    return frozen


@pytest.fixture
def headers(session: Session, clock: FrozenClock) -> Headers:
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


SEPTEMBER = FROZEN_AT - dt.timedelta(days=20)  # 16 September 2025


def _candidates(
    session: Session,
    la_id: str,
    count: int,
    *,
    closed_after_days: float | None = None,
    opened_at: dt.datetime = SEPTEMBER,
) -> None:
    for _ in range(count):
        closed = closed_after_days is not None
        closed_at = None if closed_after_days is None else opened_at + dt.timedelta(days=closed_after_days)
        session.add(
            CmeCandidate(
                id=uuid.uuid4(),
                la_id=la_id,
                submission_id=uuid.uuid4(),
                sightings=1,
                status=CandidateStatus.RESOLVED if closed else CandidateStatus.OPEN,
                opened_at=opened_at,
                closed_at=closed_at,
                outcome="on_school_roll" if closed else None,
            )
        )
    session.commit()


def _stubs(
    session: Session, la_id: str, count: int, *, late: int, removed_at: dt.datetime, ground: str = "died"
) -> None:
    """Removed records: the first `late` were due on 1 October 2025, the others on 20 October."""
    for index in range(count):
        session.add(
            CmeRecordStub(
                id=uuid.uuid4(),
                la_id=la_id,
                created_at=FROZEN_AT - dt.timedelta(days=40),
                removed_at=removed_at,
                ground=ground,
                regulation=9,
                became_aware_on=dt.date(2025, 9, 1),
                remove_due_on=dt.date(2025, 10, 1) if index < late else dt.date(2025, 10, 20),
            )
        )
    session.commit()


def _get(client: TestClient, headers: Headers, **params: str) -> dict[str, Any]:
    response = client.get("/v1/statistics", params=params, headers=headers(WG))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _cells(body: dict[str, Any], area: str) -> dict[str, dict[str, object]]:
    areas = {a["area"]: a["measures"] for a in body["areas"]}
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

    def test_every_read_is_audited_with_the_month_and_period(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        client.get("/v1/statistics", params={"la": LA_A}, headers=headers(LA_A, "statistics"))
        client.get(
            "/v1/statistics",
            params={"as_of": "2025-08", "period": "month"},
            headers=headers(LA_A, "statistics"),
        )
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "statistics.read").order_by(AuditEvent.seq)
        ).all()
        # Today (frozen) is in October 2025: by default the figures are September's.
        assert [(e.partner_id, e.role, e.object_type, e.object_ids) for e in events] == [
            (LA_A, "statistics", "statistics_cumulative", [f"{LA_A}@2025-09", f"{WALES}@2025-09"]),
            (LA_A, "statistics", "statistics_month", [f"{LA_A}@2025-08", f"{WALES}@2025-08"]),
        ]


class TestSuppression:
    def test_five_is_shown_four_is_suppressed_and_cannot_be_derived(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 5)
        _candidates(session, LA_B, 9)
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, LA_A)["candidates"] == {"value": 5, "suppressed": False}
        # Published counts are rounded to 5: LA B's 9 reads 10, Wales's 14 reads 15.
        assert _cells(body, LA_B)["candidates"] == {"value": 10, "suppressed": False}
        assert _cells(body, WALES)["candidates"] == {"value": 15, "suppressed": False}

        session.delete(session.scalars(select(CmeCandidate).where(CmeCandidate.la_id == LA_A)).first())
        session.commit()
        body = client.get("/v1/statistics", headers=headers(WG)).json()
        assert _cells(body, LA_A)["candidates"] == {"value": None, "suppressed": True}
        # Wales minus LA B would give LA A's 4: LA B goes too (secondary suppression), Wales stays
        # (13, rounded to 15).
        assert _cells(body, LA_B)["candidates"] == {"value": None, "suppressed": True}
        assert _cells(body, WALES)["candidates"] == {"value": 15, "suppressed": False}

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
        self, client: TestClient, headers: Headers, session: Session, clock: FrozenClock
    ) -> None:
        _stubs(session, LA_A, 10, late=5, removed_at=FROZEN_AT)
        _stubs(session, LA_B, 12, late=6, removed_at=FROZEN_AT)
        clock.current = dt.datetime(2025, 11, 3, 9, tzinfo=dt.UTC)  # removed in October: shown once it ended
        body = _get(client, headers)
        assert body["as_of"] == "2025-10-31"
        assert _cells(body, WALES)["removals_died"]["value"] == 20  # 22, rounded
        assert _cells(body, LA_A)["records_created"]["value"] == 10
        assert _cells(body, LA_A)["deadlines_met"]["value"] == 5
        assert _cells(body, LA_B)["deadlines_missed"]["value"] == 5  # 6, rounded
        assert _cells(body, WALES)["deadlines_met"]["value"] == 10  # 11, rounded


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
        assert header == ["area", "name", "as_of", "period", *json_body["measures"]]
        assert [row["area"] for row in rows] == [*PILOT_LAS, WALES]
        assert {(row["as_of"], row["period"]) for row in rows} == {("2025-09-30", "cumulative")}
        by_area = {row["area"]: row for row in rows}
        assert by_area[LA_A]["candidates"] == "c" and by_area[LA_B]["candidates"] == "c"
        assert by_area[WALES]["candidates"] == "15"  # 13, rounded
        assert by_area[WALES]["name"] == "Wales"

    def test_the_csv_operation_answers_what_format_csv_answers(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        """`GET /v1/statistics.csv`: the same figures, access and audit, as an operation whose only answer is
        CSV, so that a generated client reads it as text (issue 12)."""
        _candidates(session, LA_A, 4)
        _candidates(session, LA_B, 9)
        params = {"period": "month"}
        by_format = client.get("/v1/statistics", params={**params, "format": "csv"}, headers=headers(WG))
        by_path = client.get("/v1/statistics.csv", params=params, headers=headers(WG))
        assert by_path.status_code == 200
        assert by_path.headers["content-type"].startswith("text/csv")
        assert by_path.text == by_format.text
        reads = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "statistics_month")).all()
        assert len(reads) == 2
        refused = client.get("/v1/statistics.csv", headers=headers(LA_A, "case_officer"))
        assert refused.status_code == 403
        assert refused.headers["content-type"] == "application/problem+json"

    def test_an_unknown_format_is_a_problem(self, client: TestClient, headers: Headers) -> None:
        response = client.get("/v1/statistics", params={"format": "xlsx"}, headers=headers(WG))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


def _counts(body: dict[str, Any]) -> list[dict[str, object]]:
    """Every count cell of every area (the median is days, not a count)."""
    return [
        cell
        for area in body["areas"]
        for measure, cell in area["measures"].items()
        if measure != "median_days_to_resolution"
    ]


class TestMonthEnds:
    def test_two_days_of_one_month_read_the_same_although_a_case_arrived_between(
        self, client: TestClient, headers: Headers, session: Session, clock: FrozenClock
    ) -> None:
        _candidates(session, LA_A, 7)
        _candidates(session, LA_B, 9)
        first = _get(client, headers)
        _candidates(session, LA_A, 1, opened_at=FROZEN_AT)  # a new case on 6 October
        clock.current = dt.datetime(2025, 10, 31, 23, 59, tzinfo=dt.UTC)
        last = _get(client, headers)
        assert first["as_of"] == last["as_of"] == "2025-09-30"
        assert first["areas"] == last["areas"]
        assert _cells(last, LA_A)["candidates"]["value"] == 5  # 7, rounded

    def test_a_case_of_the_current_month_shows_once_the_month_has_ended(
        self, client: TestClient, headers: Headers, session: Session, clock: FrozenClock
    ) -> None:
        _candidates(session, LA_A, 7)
        _candidates(session, LA_B, 9)
        _candidates(session, LA_A, 1, opened_at=FROZEN_AT)
        assert _cells(_get(client, headers), LA_A)["candidates"]["value"] == 5  # 7 in September
        clock.current = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
        body = _get(client, headers)
        assert body["as_of"] == "2025-10-31"
        assert _cells(body, LA_A)["candidates"]["value"] == 10  # 8 by the end of October, rounded
        # The September figures stay as they were when asked for by name.
        assert _cells(_get(client, headers, as_of="2025-09"), LA_A)["candidates"]["value"] == 5

    def test_running_clocks_are_judged_at_the_month_end_not_today(
        self, client: TestClient, headers: Headers, session: Session, clock: FrozenClock
    ) -> None:
        def officer(la: str) -> dict[str, str]:  # make_record asks for headers(la)
            return headers(la, "case_officer")

        for given in ("Elin", "Osian", "Cerys", "Dafydd", "Mali"):  # five different (synthetic) children
            record_id = make_record(session, client, officer, LA_A, given=given)
            response = client.post(
                f"/v1/cme/records/{record_id}/removal-events",
                json={"ground": "moved_to_another_la", "became_aware_on": "2025-10-01",
                      "receiving_la": "E09000033", "evidence": "Letter from the family."},
                headers=officer(LA_A),
            )  # fmt: skip
            assert response.status_code == 201, response.text
            assert [d["due_on"] for d in response.json()["duties"]] == ["2025-10-29"]
        clock.current = dt.datetime(2025, 11, 3, tzinfo=dt.UTC)
        # On 3 November the five clocks are past due, but on 30 September they were not.
        september = _get(client, headers, as_of="2025-09")
        assert _cells(september, WALES)["deadlines_missed"] == {"value": None, "suppressed": True}
        october = _get(client, headers, as_of="2025-10")
        assert _cells(october, WALES)["deadlines_missed"] == {"value": 5, "suppressed": False}
        # The records were created in October too: none by 30 September, five by 31 October.
        assert _cells(september, WALES)["records_created"] == {"value": None, "suppressed": True}
        assert _cells(october, WALES)["records_created"] == {"value": 5, "suppressed": False}
        assert _cells(_get(client, headers, as_of="2025-10", period="month"), WALES)["deadlines_missed"] == {
            "value": 5,
            "suppressed": False,
        }


class TestRounding:
    def test_every_published_count_is_a_multiple_of_five_or_withheld(
        self, client: TestClient, headers: Headers, session: Session, clock: FrozenClock
    ) -> None:
        _candidates(session, LA_A, 13, closed_after_days=2)
        _candidates(session, LA_B, 7)
        _candidates(session, LA_B, 3, opened_at=FROZEN_AT)
        _stubs(session, LA_A, 8, late=3, removed_at=FROZEN_AT)
        _stubs(session, LA_B, 11, late=7, removed_at=FROZEN_AT, ground="moved_outside_wales")
        clock.current = dt.datetime(2025, 11, 3, tzinfo=dt.UTC)
        for params in (
            {},
            {"as_of": "2025-09"},
            {"period": "month"},
            {"as_of": "2025-09", "period": "month"},
        ):
            cells = _counts(_get(client, headers, **params))
            assert any(not cell["suppressed"] for cell in cells)
            for cell in cells:
                value = cell["value"]
                assert (cell["suppressed"] and value is None) or (isinstance(value, int) and value % 5 == 0)
            csv_response = client.get(
                "/v1/statistics", params={**params, "format": "csv"}, headers=headers(WG)
            )
            for row in csv.DictReader(io.StringIO(csv_response.text)):
                for measure, value in row.items():
                    if measure not in ("area", "name", "as_of", "period", "median_days_to_resolution"):
                        assert value == "c" or int(value) % 5 == 0
        body = _get(client, headers)
        assert body["suppression"]["rounding"] == 5


class TestMonthlyFlows:
    def test_a_month_counts_only_what_happened_in_it(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        august = dt.datetime(2025, 8, 20, 12, tzinfo=dt.UTC)
        _candidates(session, LA_A, 12, opened_at=august)
        _candidates(session, LA_B, 6, opened_at=august)
        _candidates(session, LA_A, 7)
        _candidates(session, LA_B, 9)
        # The last instant of September counts for September, the first of October does not.
        _candidates(session, LA_B, 1, opened_at=dt.datetime(2025, 9, 30, 23, 59, 59, tzinfo=dt.UTC))
        _candidates(session, LA_B, 1, opened_at=dt.datetime(2025, 10, 1, tzinfo=dt.UTC))
        september = _get(client, headers, period="month")
        assert (september["as_of"], september["period"]) == ("2025-09-30", "month")
        assert _cells(september, LA_A)["candidates"]["value"] == 5  # 7, rounded
        assert _cells(september, LA_B)["candidates"]["value"] == 10  # 9 + 1 on the last second
        assert _cells(september, WALES)["candidates"]["value"] == 15  # 17, rounded
        august_flow = _get(client, headers, as_of="2025-08", period="month")
        assert _cells(august_flow, LA_A)["candidates"]["value"] == 10  # 12, rounded
        assert _cells(august_flow, WALES)["candidates"]["value"] == 20  # 18, rounded
        cumulative = _get(client, headers)
        assert cumulative["period"] == "cumulative"
        assert _cells(cumulative, WALES)["candidates"]["value"] == 35  # 12 + 6 + 7 + 10

    def test_a_small_flow_is_withheld_like_any_small_count(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        _candidates(session, LA_A, 20, opened_at=dt.datetime(2025, 8, 20, tzinfo=dt.UTC))
        _candidates(session, LA_B, 20, opened_at=dt.datetime(2025, 8, 20, tzinfo=dt.UTC))
        _candidates(session, LA_A, 3)  # 3 new in September: 23 - 20 must not be readable
        september = _get(client, headers, period="month")
        assert _cells(september, LA_A)["candidates"] == {"value": None, "suppressed": True}
        assert _cells(september, WALES)["candidates"] == {"value": None, "suppressed": True}
        assert _cells(_get(client, headers), LA_A)["candidates"]["value"] == 25  # 23, rounded: not 20 + 3


class TestAsOf:
    @pytest.mark.parametrize(
        ("as_of", "code"),
        [
            ("2025-10", "month_not_ended"),  # the current month
            ("2026-01", "month_not_ended"),  # a future month
            ("2019-12", "before_service"),  # before the legal window opened (2020 in the test settings)
            ("2025-9", "string_pattern_mismatch"),
            ("2025-13", "string_pattern_mismatch"),
            ("September", "string_pattern_mismatch"),
        ],
    )
    def test_a_month_that_cannot_be_given_is_a_problem_naming_as_of(
        self, client: TestClient, headers: Headers, as_of: str, code: str
    ) -> None:
        response = client.get("/v1/statistics", params={"as_of": as_of}, headers=headers(WG))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("query.as_of", code)]

    def test_a_refused_month_is_not_audited_as_a_read(
        self, client: TestClient, headers: Headers, session: Session
    ) -> None:
        client.get("/v1/statistics", params={"as_of": "2025-10"}, headers=headers(WG))
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "statistics.read")).all() == []

    def test_an_ended_month_named_is_given(self, client: TestClient, headers: Headers) -> None:
        assert _get(client, headers, as_of="2025-04")["as_of"] == "2025-04-30"
