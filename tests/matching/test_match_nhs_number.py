"""`nhs_number` in `POST /v1/match` follows the deployment, as the schema says: matched on where
CME_NHS_NUMBER_ENABLED is on, a 422 naming the record and field where it is off (issue 12)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from app.partners.models import PartnerKind
from tests.submissions.conftest import PILOT_LA, child
from tests.support.partners import PILOT_LAS, create_partner
from tests.support.tokens import auth_header

OFFICER = {"officer": {"id": "officer-7", "role": "case_officer"}}
NHS_NUMBER = "9434765919"  # passes the modulus-11 check; issued to no one in these tests


@pytest.mark.parametrize("enabled", [False, True])
def test_nhs_number_is_taken_only_where_switched_on(
    settings: Settings, session: Session, enabled: bool
) -> None:
    app = create_app(
        settings.model_copy(update={"nhs_number_enabled": enabled, "pilot_las": list(PILOT_LAS)})
    )
    la = create_partner(session, PILOT_LA, PartnerKind.local_authority)
    records = [child(), child(nhs_number=NHS_NUMBER)]
    with TestClient(app) as client:
        response = client.post(
            "/v1/match", json={"records": records}, headers=auth_header(la.key, la.id, claims=OFFICER)
        )
    if enabled:
        assert response.status_code == 200, response.text
        assert [result["record_index"] for result in response.json()["results"]] == [0, 1]
    else:
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert (error["record_index"], error["field"]) == (1, "nhs_number")
