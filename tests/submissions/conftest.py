"""Partners for intake tests: a health board, a GP practice, pilot and non-pilot LAs, an independent school."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from tests.support.partners import TestPartner, create_partner

AS_OF = dt.date(2025, 4, 30)
PILOT_LA = "W06000001"
OTHER_PILOT_LA = "W06000002"
NON_PILOT_LA = "W06000005"


@pytest.fixture
def health_board(session: Session) -> TestPartner:
    return create_partner(session, "W11000023", PartnerKind.local_health_board)


@pytest.fixture
def pilot_la(session: Session) -> TestPartner:
    return create_partner(session, PILOT_LA, PartnerKind.local_authority)


@pytest.fixture
def other_la(session: Session) -> TestPartner:
    return create_partner(session, OTHER_PILOT_LA, PartnerKind.local_authority)


@pytest.fixture
def non_pilot_la(session: Session) -> TestPartner:
    return create_partner(session, NON_PILOT_LA, PartnerKind.local_authority)


@pytest.fixture
def gp_practice(session: Session) -> TestPartner:
    return create_partner(session, "W97001", PartnerKind.gp_practice)


@pytest.fixture
def independent_school(session: Session) -> TestPartner:
    return create_partner(session, "6606001", PartnerKind.independent_school)


def child(**overrides: Any) -> dict[str, Any]:
    """A synthetic child of compulsory school age on AS_OF, in health-record shape."""
    record: dict[str, Any] = {
        "given_name": "Siân",
        "middle_names": "Gwenllïan",
        "family_name": "Prys-Jones",
        "date_of_birth": "2014-06-02",
        "address": {"lines": ["12 Heol y Felin"], "town": "Llangefni", "postcode": "LL77 7AA"},
    }
    record.update(overrides)
    return record


def pupil(**overrides: Any) -> dict[str, Any]:
    record = child(sex="F", school={"number": "6602001", "name": "Ysgol Gynradd Synthetig"})
    record.update(overrides)
    return record


def payload(
    sender: str,
    records: list[dict[str, Any]],
    *,
    kind: str = "health_register",
    recipient: str | None = PILOT_LA,
    submission_id: uuid.UUID | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "submission_id": str(submission_id or uuid.uuid4()),
        "kind": kind,
        "sender": sender,
        "as_of": AS_OF.isoformat(),
        "records": records,
        **extra,
    }
    if recipient is not None:
        body["recipient"] = recipient
    return body
