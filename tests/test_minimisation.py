"""R3.5 / issue item 8: after a matching run, no matched child's health-list data remains anywhere.

The health list gives the child a middle name and an address the school roll does not hold (the family
moved), so those values exist only in the health list. After the run they must be in no table of the
database (submissions and receipts, job payloads, match outcomes and runs, CME and audit tables, the
replay cache) and in no log line, while the evidence of receipt (counts, hashes) stays.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db import make_session_factory
from app.jobs.worker import Worker
from app.partners.models import PartnerKind
from app.submissions.models import Submission
from app.wiring.jobs import default_handlers
from app.wiring.models import metadata
from tests.submissions.conftest import PILOT_LA, child, payload, pupil
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header, signed_body

NAMES = {"given_name": "Gwenllian", "family_name": "Prysor", "date_of_birth": "2013-05-05"}
ROLL_CHILD = pupil(
    **NAMES,
    middle_names=None,
    address={"lines": ["2 Heol yr Ysgol"], "town": "Llangefni", "postcode": "LL77 7BB"},
)
HEALTH_CHILD = child(
    **NAMES,
    middle_names="Eirlyswen",
    address={"lines": ["44 Lon Newydd Unigryw"], "town": "Benllech", "postcode": "LL74 8ZZ"},
)
HEALTH_ONLY_VALUES = ("Eirlyswen", "44 Lon Newydd Unigryw", "Benllech", "LL74 8ZZ")


def _send(client: TestClient, partner: TestPartner, body: dict[str, Any]) -> httpx.Response:
    headers = {"Content-Type": "application/jose", **auth_header(partner.key, partner.id)}
    response: httpx.Response = client.post(
        "/v1/submissions", content=signed_body(partner.key, body), headers=headers
    )
    return response


def _every_table_as_text(session: Session) -> dict[str, str]:
    return {
        table.name: "\n".join(
            session.execute(text(f'SELECT row_to_json(t)::text FROM "{table.name}" AS t')).scalars().all()
        )
        for table in metadata.sorted_tables
    }


def test_no_matched_child_data_remains_in_any_table_or_log(
    client: TestClient,
    session: Session,
    engine: Engine,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    assert (
        _send(client, la, payload(la.id, [ROLL_CHILD], kind="school_roll", recipient=None)).status_code == 201
    )
    response = _send(client, board, payload(board.id, [HEALTH_CHILD]))
    assert response.status_code == 201, response.text

    # Before the run the health-only values are held (so the scan below can see them).
    assert all(value in _every_table_as_text(session)["health_child"] for value in HEALTH_ONLY_VALUES)

    assert Worker(make_session_factory(engine), default_handlers(settings)).run_until_idle() >= 1
    job = client.get(f"/v1/jobs/{response.json()['job_id']}", headers=auth_header(board.key, board.id)).json()
    assert job["status"] == "succeeded" and job["result"]["outcomes"]["matched"] == 1, job

    session.expire_all()
    tables = _every_table_as_text(session)
    for value in HEALTH_ONLY_VALUES:
        assert [name for name, dump in tables.items() if value in dump] == [], value
        assert value not in caplog.text, value
    submission = session.scalars(select(Submission).where(Submission.kind == "health_register")).one()
    assert (submission.status, submission.accepted_count, len(submission.payload_sha256)) == (
        "matched",
        1,
        64,
    )
