"""A cursor that was not issued for the list is a 400 (invalid-cursor), and the OpenAPI says so.

Found by the fuzzer (tests/security/test_fuzz_openapi.py): the CME lists answered an undocumented 400.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.main import openapi_document
from app.partners.models import PartnerKind
from tests.support.partners import create_partner
from tests.support.tokens import auth_header


@pytest.mark.parametrize("path", ["/v1/cme/records", "/v1/cme/candidates"])
def test_a_foreign_cursor_is_a_documented_400(client: TestClient, session: Session, path: str) -> None:
    la = create_partner(session, "W06000001", PartnerKind.local_authority)
    headers = auth_header(la.key, la.id, claims={"officer": {"id": "officer-1", "role": "case_officer"}})
    response = client.get(path, params={"cursor": "given_key"}, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "urn:cme-hub:problem:invalid-cursor"
    assert "400" in openapi_document()["paths"][path]["get"]["responses"]
