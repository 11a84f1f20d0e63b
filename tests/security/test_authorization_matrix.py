"""The authorisation table, proved from outside: every operation of `openapi/openapi.json` with every kind of
caller (real signed tokens), against `app.security.authorization.RULES` (issue 11, item 1).

A refused caller gets the table's refusal (403 `operation-not-allowed`, or 404); an allowed one gets past
authorisation (anything but 401 and 403: ids name nothing and bodies are minimal, so 404, 412, 422 or 428
are fine). An operation without a row in the table fails here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.partners.models import PartnerKind
from app.security.authorization import LA_KINDS, RULES, CallerKind, OperationNotAllowed
from app.security.dependencies import CallerDep
from tests.support.partners import PILOT_LAS, TestPartner, create_partner
from tests.support.tokens import auth_header, signed_body

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
NOBODY = "00000000-0000-0000-0000-000000000000"
NON_PILOT_LA = "W06000003"
OFFICER_ROLES = {
    CallerKind.la_case_officer: "case_officer",
    CallerKind.la_designated_officer: "designated_officer",
    CallerKind.la_data_protection_officer: "data_protection_officer",
    CallerKind.la_statistics: "statistics",
}
OTHER_PARTNERS = {
    CallerKind.health_board: ("W11000023", PartnerKind.local_health_board),
    CallerKind.gp_practice: ("W97001", PartnerKind.gp_practice),
    CallerKind.independent_school: ("6606001", PartnerKind.independent_school),
    CallerKind.welsh_government: ("WG", PartnerKind.welsh_government),
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    content_type: str | None


@dataclass(frozen=True)
class CallerCase:
    kind: CallerKind
    pilot: bool
    partner: TestPartner
    claims: dict[str, Any]

    @property
    def label(self) -> str:
        return (
            f"{self.kind}{'' if self.kind not in LA_KINDS else ' (pilot)' if self.pilot else ' (non-pilot)'}"
        )


def _operations() -> list[Operation]:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return [
        Operation(
            operation_id=spec["operationId"],
            method=method.upper(),
            path=path,
            content_type=next(iter(spec.get("requestBody", {}).get("content", {})), None),
        )
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    ]


def _callers(session: Session) -> list[CallerCase]:
    callers = [
        CallerCase(kind, False, create_partner(session, partner_id, partner_kind), {})
        for kind, (partner_id, partner_kind) in OTHER_PARTNERS.items()
    ]
    for la_id, pilot in ((PILOT_LAS[0], True), (NON_PILOT_LA, False)):
        la = create_partner(session, la_id, PartnerKind.local_authority)
        callers.append(CallerCase(CallerKind.la_system, pilot, la, {}))
        callers += [
            CallerCase(kind, pilot, la, {"officer": {"id": "officer-1", "role": role}})
            for kind, role in OFFICER_ROLES.items()
        ]
    return callers


def _send(client: TestClient, operation: Operation, headers: dict[str, str], key: Any) -> Any:
    url = operation.path
    for name in (
        "candidate_id",
        "record_id",
        "request_id",
        "transfer_id",
        "job_id",
        "review_id",
        "submission_id",
    ):
        url = url.replace("{" + name + "}", NOBODY)
    if operation.content_type == "application/jose":
        # A signed body naming nothing: intake refuses it after authorisation (422), never with 401.
        body = signed_body(key, {})
        return client.request(
            operation.method, url, content=body, headers={**headers, "Content-Type": "application/jose"}
        )
    if operation.content_type is not None:
        return client.request(operation.method, url, json={}, headers=headers)
    return client.request(operation.method, url, headers=headers)


def test_every_operation_has_a_rule_and_the_app_serves_no_other(settings: Settings) -> None:
    documented = {operation.operation_id for operation in _operations()}
    paths = create_app(settings).openapi()["paths"]
    served = {spec["operationId"] for methods in paths.values() for spec in methods.values()}
    assert documented == served  # openapi.json is the app's (tests/core/test_openapi.py checks the rest)
    assert sorted(documented - set(RULES)) == []  # an operation without a row
    assert sorted(set(RULES) - documented) == []  # a row for no operation


def test_every_caller_kind_is_walked(session: Session) -> None:
    assert {caller.kind for caller in _callers(session)} == set(CallerKind)


def test_every_operation_with_every_caller_answers_as_the_table_says(
    client: TestClient, session: Session
) -> None:
    callers = _callers(session)
    wrong: list[str] = []
    for operation in _operations():
        rule = RULES[operation.operation_id]
        anonymous = _send(client, operation, {}, callers[0].partner.key)
        if rule.public != (anonymous.status_code != 401):
            wrong.append(f"{operation.operation_id} without a token: {anonymous.status_code}")
        for caller in callers:
            headers = auth_header(caller.partner.key, caller.partner.id, claims=caller.claims)
            response = _send(client, operation, headers, caller.partner.key)
            if rule.allows(caller.kind, pilot=caller.pilot):
                ok = response.status_code not in (401, 403)
            elif rule.refusal == 403:
                ok = response.status_code == 403 and response.json()["type"].endswith(
                    OperationNotAllowed.slug
                )
            else:
                ok = response.status_code == 404
            if not ok:
                wrong.append(f"{operation.operation_id} by {caller.label}: {response.status_code}")
    assert wrong == []


def test_an_operation_without_a_row_is_refused_to_everyone(app: FastAPI, session: Session) -> None:
    @app.get("/v1/test-only/unlisted", operation_id="unlisted_test_operation")
    def unlisted(caller: CallerDep) -> dict[str, str]:
        return {"partner": caller.partner_id}

    with TestClient(app) as client:
        for caller in _callers(session):
            headers = auth_header(caller.partner.key, caller.partner.id, claims=caller.claims)
            response = client.get("/v1/test-only/unlisted", headers=headers)
            assert response.status_code == 403, caller.label


@pytest.mark.parametrize(
    ("kind", "pilot", "operation_id"),
    [
        # The holes found from outside (issue 11, item 1): each must now be refused.
        (CallerKind.la_statistics, True, "list_match_reviews"),
        (CallerKind.la_statistics, True, "get_match_review"),
        (CallerKind.la_statistics, True, "decide_match_review"),
        (CallerKind.la_system, True, "list_match_reviews"),
        (CallerKind.la_system, True, "decide_match_review"),
        (CallerKind.la_data_protection_officer, True, "decide_match_review"),
        (CallerKind.la_statistics, True, "match_records"),
        (CallerKind.la_case_officer, False, "match_records"),
        (CallerKind.la_case_officer, False, "list_match_reviews"),
        (CallerKind.la_statistics, True, "list_dual_registrations"),
        (CallerKind.la_system, True, "list_dual_registrations"),
        # A non-pilot LA operates no CME database (reg 3): its officers reach none of its operations.
        (CallerKind.la_case_officer, False, "list_cme_records"),
        (CallerKind.la_designated_officer, False, "list_cme_incoming_transfers"),
        (CallerKind.la_data_protection_officer, False, "record_cme_subject_access_request"),
        (CallerKind.la_data_protection_officer, False, "set_cme_record_restriction"),
    ],
)
def test_the_holes_found_from_outside_are_closed(kind: CallerKind, pilot: bool, operation_id: str) -> None:
    assert not RULES[operation_id].allows(kind, pilot=pilot)
