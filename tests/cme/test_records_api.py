"""The query API for LA case systems: tenancy (reg 12), roles, lists, pagination, history and audit."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from tests.cme.conftest import (
    CONFIRM,
    FROZEN_AT,
    HEALTH_BOARD,
    LA_A,
    LA_B,
    Headers,
    child,
    make_record,
    open_candidates,
)

RoutesFor = Callable[[str, str], list[tuple[str, str, dict[str, object] | None]]]


def routes_for(candidate_id: str, record_id: str) -> list[tuple[str, str, dict[str, object] | None]]:
    """Every route of the CME API that names an object, with a valid body where it needs one."""
    return [
        ("GET", f"/v1/cme/candidates/{candidate_id}", None),
        ("GET", f"/v1/cme/candidates/{candidate_id}/history", None),
        ("POST", f"/v1/cme/candidates/{candidate_id}/resolve", {"outcome": "moved_away"}),
        ("POST", f"/v1/cme/candidates/{candidate_id}/confirm", CONFIRM),
        ("GET", f"/v1/cme/records/{record_id}", None),
        ("GET", f"/v1/cme/records/{record_id}/history", None),
        (
            "PATCH",
            f"/v1/cme/records/{record_id}",
            {"reason": "Phone call with parent", "family_name": "Jones"},
        ),
        (
            "POST",
            f"/v1/cme/records/{record_id}/removal-events",
            {"ground": "died", "became_aware_on": "2025-10-01", "evidence": "Notified by registrar."},
        ),
        ("POST", f"/v1/cme/records/{record_id}/removal", {"ground": "died"}),
        (
            "PUT",
            f"/v1/cme/records/{record_id}/restriction",
            {"restricted": True, "reason": "Data subject asked"},
        ),
        ("GET", f"/v1/cme/records/{record_id}/subject-access-export", None),
        ("POST", f"/v1/cme/records/{record_id}/transfers", {"receiving_la": "W06000015"}),
    ]


def _role_allowed(path: str) -> str:
    """A role that may use the route, so that only the tenancy check can refuse."""
    return "data_protection_officer" if path.endswith("subject-access-export") else "designated_officer"


# Distinct names: identity keys ignore digits, so "P1" and "P2" would be one child.
NAMES = ("Aled", "Bethan", "Carys", "Dafydd", "Eirlys")
LIST_ROUTES = ["/v1/cme/candidates", "/v1/cme/records", "/v1/cme/due?before=2040-01-01"]


@pytest.fixture
def foreign(session: Session, client: TestClient, headers: Headers) -> tuple[str, str]:
    """An open candidate and a record (with a running clock) of LA B."""
    (candidate_id,) = open_candidates(session, LA_B, [child("Guto", "Bowen")])
    record_id = make_record(session, client, headers, LA_B, given="Nia", family="Lloyd")
    response = client.post(
        f"/v1/cme/records/{record_id}/removal-events",
        json={"ground": "registered_pupil", "became_aware_on": "2025-10-01", "evidence": "School confirmed."},
        headers=headers(LA_B),
    )
    assert response.status_code == 201
    return str(candidate_id), record_id


class TestTenancy:
    @pytest.mark.parametrize("index", range(len(routes_for("c", "r"))))
    def test_r12_1_another_las_objects_answer_404(
        self, index: int, client: TestClient, headers: Headers, foreign: tuple[str, str]
    ) -> None:
        method, path, body = routes_for(*foreign)[index]
        response = client.request(
            method, path, json=body, headers=headers(LA_A, _role_allowed(path)) | {"If-Match": '"1"'}
        )
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        # ...and nothing happened to LA B's objects.
        own = client.get(f"/v1/cme/records/{foreign[1]}", headers=headers(LA_B))
        assert own.status_code == 200 and own.json()["address"]["town"] == "Caerdydd"

    @pytest.mark.parametrize("path", LIST_ROUTES)
    def test_r12_2_lists_never_show_another_las_objects(
        self, path: str, client: TestClient, headers: Headers, foreign: tuple[str, str]
    ) -> None:
        mine = client.get(path, headers=headers(LA_A))
        theirs = client.get(path, headers=headers(LA_B))
        assert mine.status_code == theirs.status_code == 200
        assert mine.json()["items"] == []
        assert len(theirs.json()["items"]) == 1

    def test_unknown_id_is_404_like_a_foreign_one(self, client: TestClient, headers: Headers) -> None:
        response = client.get(f"/v1/cme/records/{uuid.uuid4()}", headers=headers())
        assert response.status_code == 404

    @pytest.mark.parametrize(
        ("partner", "role"),
        [(HEALTH_BOARD, None), (LA_A, None), (LA_A, "statistics")],
        ids=["health-board", "la-without-officer", "statistics-role"],
    )
    def test_non_la_partners_and_roles_without_access_get_403(
        self, partner: str, role: str | None, client: TestClient, headers: Headers, foreign: tuple[str, str]
    ) -> None:
        for method, path, body in routes_for(*foreign):
            response = client.request(method, path, json=body, headers=headers(partner, role))
            assert response.status_code == 403, (method, path)
        for path in LIST_ROUTES:
            assert client.get(path, headers=headers(partner, role)).status_code == 403

    def test_no_credentials_gets_401(self, client: TestClient, foreign: tuple[str, str]) -> None:
        for method, path, body in routes_for(*foreign):
            assert client.request(method, path, json=body).status_code == 401
        for path in LIST_ROUTES:
            assert client.get(path).status_code == 401


def _record_with_contacts(session: Session, client: TestClient, headers: Headers, *, sensitive: bool) -> str:
    record_id = make_record(session, client, headers)
    etag = client.get(f"/v1/cme/records/{record_id}", headers=headers()).headers["ETag"]
    patch = {
        "reason": "Details from the family support team",
        "parents": [{"name": "Rhian Pritchard", "phone": "029 2000 0000", "email": "parent@example.invalid"}],
        "additional_learning_needs": {"needs": "Speech and language needs", "provision": "Weekly therapy"},
        "sensitive": sensitive,
    }
    response = client.patch(
        f"/v1/cme/records/{record_id}",
        json=patch,
        headers=headers(LA_A, "designated_officer") | {"If-Match": etag},
    )
    assert response.status_code == 200, response.text
    return record_id


class TestFieldVisibility:
    def test_sch2_para4_6_case_officer_sees_no_contacts_or_aln(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = _record_with_contacts(session, client, headers, sensitive=False)
        body = client.get(f"/v1/cme/records/{record_id}", headers=headers(LA_A, "case_officer")).json()
        assert body["parents"] is None and body["additional_learning_needs"] is None
        assert body["hidden_fields"] == ["additional_learning_needs", "parents"]
        assert "parents" not in body["provenance"] and body["address"] is not None
        listed = client.get("/v1/cme/records", headers=headers(LA_A, "case_officer")).json()["items"][0]
        assert listed["parents"] is None and listed["additional_learning_needs"] is None

    @pytest.mark.parametrize("role", ["designated_officer", "data_protection_officer"])
    def test_sch2_para4_6_designated_and_dp_officers_see_contacts_and_aln(
        self, role: str, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = _record_with_contacts(session, client, headers, sensitive=False)
        body = client.get(f"/v1/cme/records/{record_id}", headers=headers(LA_A, role)).json()
        assert body["parents"][0]["phone"] == "029 2000 0000"
        assert body["additional_learning_needs"] == {
            "needs": "Speech and language needs",
            "provision": "Weekly therapy",
        }
        assert body["provenance"]["parents"]["officer_id"] == "officer-1"

    @pytest.mark.parametrize(("role", "visible"), [("case_officer", False), ("data_protection_officer", False),
                                                   ("designated_officer", True)])  # fmt: skip
    def test_sensitive_address_visible_to_designated_officers_only(
        self, role: str, visible: bool, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = _record_with_contacts(session, client, headers, sensitive=True)
        body = client.get(f"/v1/cme/records/{record_id}", headers=headers(LA_A, role)).json()
        assert (body["address"] is not None) is visible
        assert ("address" in body["provenance"]) is visible
        # Nor can the address be found by district.
        found = client.get("/v1/cme/records?postcode_district=cf10", headers=headers(LA_A, role)).json()[
            "items"
        ]
        assert len(found) == (1 if visible else 0)


def _ids(response_json: dict[str, object]) -> list[str]:
    items = response_json["items"]
    assert isinstance(items, list)
    return [item["id"] for item in items]


class TestListing:
    def test_filters_by_district_year_group_and_flags(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        year7 = make_record(
            session, client, headers, given="Elin", dob=dt.date(2014, 3, 2), postcode="CF10 1AA"
        )
        year3 = make_record(
            session, client, headers, given="Cai", dob=dt.date(2018, 1, 15), postcode="SA31 1AA"
        )

        def get(query: str) -> list[str]:
            return sorted(_ids(client.get(f"/v1/cme/records?{query}", headers=headers()).json()))

        assert get("postcode_district=SA31") == [year3]
        assert get("national_curriculum_year=7") == [year7]
        assert get("national_curriculum_year=3") == [year3]
        assert get("national_curriculum_year=5") == []
        assert get("suspected_inaccurate=false") == sorted([year7, year3])
        assert get("sensitive=true") == []
        assert get("status=transfer_pending") == []
        # Elin leaves CSA after the SLD of 2030, Cai after that of 2034.
        assert get("due_before=2030-06-29") == [year7]
        assert get("due_before=2030-06-28") == []

    def test_candidate_list_defaults_to_open_ones(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        first, second = open_candidates(session, LA_A, [child("Elin"), child("Cai")])
        client.post(f"/v1/cme/candidates/{first}/resolve", json={"outcome": "moved_away"}, headers=headers())
        assert _ids(client.get("/v1/cme/candidates", headers=headers()).json()) == [str(second)]
        resolved = client.get("/v1/cme/candidates?status=resolved", headers=headers()).json()
        assert _ids(resolved) == [str(first)]

    def test_pagination_is_stable_while_rows_are_added(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        ids = [
            str(i)
            for i in open_candidates(
                session, LA_A, [child(name, health_child_id=n) for n, name in enumerate(NAMES)]
            )
        ]
        # Same opened_at for all: the id breaks ties, so the order is (opened_at, id).
        expected = sorted(ids)
        page1 = client.get("/v1/cme/candidates?limit=2", headers=headers()).json()
        assert _ids(page1) == expected[:2] and page1["next_cursor"]
        # A child opened later sorts after every existing one and cannot shift the pages already read.
        open_candidates(session, LA_A, [child("Hwyr")], now=FROZEN_AT + dt.timedelta(minutes=1))
        page2 = client.get(
            f"/v1/cme/candidates?limit=2&cursor={page1['next_cursor']}", headers=headers()
        ).json()
        assert _ids(page2) == expected[2:4]
        page3 = client.get(
            f"/v1/cme/candidates?limit=2&cursor={page2['next_cursor']}", headers=headers()
        ).json()
        assert _ids(page3)[0] == expected[4] and len(_ids(page3)) == 2 and page3["next_cursor"] is None

    def test_newest_first_pages_walk_backwards(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        ids = sorted(
            str(i)
            for i in open_candidates(
                session, LA_A, [child(name, health_child_id=n) for n, name in enumerate(NAMES[:3])]
            )
        )
        page1 = client.get("/v1/cme/candidates?sort=-opened_at&limit=2", headers=headers()).json()
        page2 = client.get(
            f"/v1/cme/candidates?sort=-opened_at&limit=2&cursor={page1['next_cursor']}", headers=headers()
        ).json()
        assert _ids(page1) + _ids(page2) == ids[::-1]

    def test_cursor_of_another_la_or_sort_is_refused(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        open_candidates(session, LA_B, [child(name, health_child_id=n) for n, name in enumerate(NAMES[:3])])
        cursor = client.get("/v1/cme/candidates?limit=1", headers=headers(LA_B)).json()["next_cursor"]
        assert client.get(f"/v1/cme/candidates?cursor={cursor}", headers=headers(LA_A)).status_code == 400
        assert (
            client.get(
                f"/v1/cme/candidates?sort=-opened_at&cursor={cursor}", headers=headers(LA_B)
            ).status_code
            == 400
        )
        assert (
            client.get(f"/v1/cme/candidates?limit=1&cursor={cursor}", headers=headers(LA_B)).status_code
            == 200
        )

    def test_limit_is_capped_by_the_server(
        self, session: Session, client: TestClient, headers: Headers, app: object
    ) -> None:
        from app.cme.config import CmeSettings, get_cme_settings

        app.dependency_overrides[get_cme_settings] = lambda: CmeSettings(max_page_size=2)  # type: ignore[attr-defined]
        open_candidates(session, LA_A, [child(name, health_child_id=n) for n, name in enumerate(NAMES[:3])])
        page = client.get("/v1/cme/candidates?limit=1000", headers=headers()).json()
        assert len(page["items"]) == 2 and page["next_cursor"]


class TestAudit:
    def _events(self, session: Session) -> list[tuple[str, str | None, str | None, list[str]]]:
        session.expire_all()
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        return [(row.action, row.officer_id, row.purpose, row.object_ids) for row in rows]

    def test_r12_3_every_read_and_list_writes_an_audit_event(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        before = len(self._events(session))
        client.get(f"/v1/cme/records/{record_id}", headers=headers(officer_id="reader-9"))
        client.get("/v1/cme/records", headers=headers(officer_id="reader-9"))
        client.get(f"/v1/cme/records/{record_id}/history", headers=headers(officer_id="reader-9"))
        client.get("/v1/cme/records?postcode_district=ZZ99", headers=headers(officer_id="reader-9"))
        assert self._events(session)[before:] == [
            ("cme.record.read", "reader-9", "reg12_casework", [record_id]),
            ("cme.record.list", "reader-9", "reg12_casework", [record_id]),
            ("cme.record.history", "reader-9", "reg12_casework", [record_id]),
            ("cme.record.list", "reader-9", "reg12_casework", []),
        ]

    def test_r12_3_decisions_are_audited_and_the_chain_holds(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        from app.audit.service import verify_chain

        (candidate_id,) = open_candidates(session, LA_A, [child()])
        client.get(f"/v1/cme/candidates/{candidate_id}", headers=headers())
        record_id = client.post(
            f"/v1/cme/candidates/{candidate_id}/confirm",
            json=CONFIRM,
            headers=headers(),
        ).json()["id"]
        assert self._events(session) == [
            ("cme.candidate.open", None, "reg3_identification", [str(candidate_id)]),
            ("cme.candidate.read", "officer-1", "reg3_identification", [str(candidate_id)]),
            ("cme.candidate.confirm", "officer-1", "reg3_identification", [str(candidate_id), record_id]),
        ]
        assert verify_chain(session).ok

    def test_refused_request_leaves_no_audit_event(
        self, session: Session, client: TestClient, headers: Headers
    ) -> None:
        record_id = make_record(session, client, headers)
        before = self._events(session)
        assert client.get(f"/v1/cme/records/{record_id}", headers=headers(LA_B)).status_code == 404
        assert self._events(session) == before
