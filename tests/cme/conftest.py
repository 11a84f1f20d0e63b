"""Two pilot LAs and a health board with real keys, a frozen clock, and officer bearer tokens.

Keys are registered as usable from 2020 so the clock can be frozen on any legal date of the pilot.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.cme import candidates
from app.cme.domain import CandidateInput
from app.partners import service as partners_service
from app.partners.models import PartnerKind
from app.partners.schemas import PartnerCreate
from tests.support.clock import FrozenClock
from tests.support.keys import TestKey
from tests.support.partners import PILOT_LAS, register_test_key
from tests.support.tokens import auth_header

LA_A, LA_B = PILOT_LAS
HEALTH_BOARD = "W11000001"
# A Monday in term time, inside the legal window of the pilot.
FROZEN_AT = dt.datetime(2025, 10, 6, 9, 30, tzinfo=dt.UTC)
KEYS_VALID_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

Headers = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class Partners:
    keys: dict[str, TestKey]


@pytest.fixture
def clock(app: FastAPI) -> FrozenClock:
    frozen = FrozenClock(FROZEN_AT)
    app.state.clock = frozen
    return frozen


@pytest.fixture
def partners(session: Session) -> Partners:
    keys: dict[str, TestKey] = {}
    for partner_id, kind in ((LA_A, PartnerKind.local_authority), (LA_B, PartnerKind.local_authority),
                             (HEALTH_BOARD, PartnerKind.local_health_board)):  # fmt: skip
        partners_service.create_partner(
            session,
            PartnerCreate(id=partner_id, kind=kind, name="Test partner"),
            pilot_las=PILOT_LAS,
            now=FROZEN_AT,
        )
        session.commit()
        keys[partner_id] = register_test_key(session, partner_id, not_before=KEYS_VALID_FROM)
    return Partners(keys=keys)


@pytest.fixture
def headers(partners: Partners, clock: FrozenClock) -> Headers:
    """`headers(LA_A, "case_officer")`: a fresh token for that LA's officer; role None names no officer."""

    def make(
        partner_id: str = LA_A, role: str | None = "case_officer", officer_id: str = "officer-1"
    ) -> dict[str, str]:
        claims = {"officer": {"id": officer_id, "role": role}} if role else {}
        return auth_header(partners.keys[partner_id], partner_id, now=clock.now(), claims=claims)

    return make


def child(
    given: str = "Elin",
    family: str = "Pritchard",
    dob: dt.date | None = dt.date(2014, 3, 2),
    postcode: str | None = "CF10 1AA",
    health_child_id: int | None = None,
    link_id: uuid.UUID | None = None,
) -> CandidateInput:
    """A synthetic health-list child (names and places invented for tests)."""
    return CandidateInput(
        health_child_id=health_child_id,
        match_run_id=None,
        given_name=given,
        family_name=family,
        former_names=({"given_name": None, "family_name": "Rees"},),
        date_of_birth=dob,
        address_lines=("1 Heol Test",),
        town="Caerdydd",
        postcode=postcode,
        address_is_last_known=False,
        link_id=link_id,
    )


def open_candidates(
    session: Session,
    la_id: str,
    children: Sequence[CandidateInput],
    *,
    submission_id: uuid.UUID | None = None,
    now: dt.datetime = FROZEN_AT,
) -> list[uuid.UUID]:
    submission_ids = [submission_id or uuid.uuid4()] * len(children)
    ids = candidates.open_candidates(
        session, la_id=la_id, submission_ids=submission_ids, children=children, now=now
    )
    session.commit()
    return ids


CONFIRM = {
    "ordinarily_resident": True,
    "not_registered_pupil": True,
    "education_may_not_be_suitable": True,
    "basis": "Family told the attendance officer the child is not in any school.",
}


def confirm(
    client: TestClient, headers: Headers, candidate_id: uuid.UUID, la_id: str = LA_A
) -> dict[str, object]:
    response = client.post(f"/v1/cme/candidates/{candidate_id}/confirm", json=CONFIRM, headers=headers(la_id))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def make_record(
    session: Session, client: TestClient, headers: Headers, la_id: str = LA_A, **fields: object
) -> str:
    """Open a candidate for a child and confirm it: the id of the new CME record."""
    (candidate_id,) = open_candidates(session, la_id, [child(**fields)])  # type: ignore[arg-type]
    return str(confirm(client, headers, candidate_id, la_id)["id"])
