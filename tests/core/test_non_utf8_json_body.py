"""A JSON body that is not UTF-8 is malformed JSON: 422 json_invalid, like a body that does not parse.

Found by the fuzzer (tests/security/test_fuzz_openapi.py): FastAPI answered these with a bare 400 that no
operation documents.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from tests.support.partners import create_partner
from tests.support.tokens import auth_header


def test_a_json_body_that_is_not_utf8_is_a_documented_422(client: TestClient, session: Session) -> None:
    la = create_partner(session, "W06000001", PartnerKind.local_authority)
    headers = auth_header(la.key, la.id, claims={"officer": {"id": "officer-1", "role": "case_officer"}})
    response = client.post(
        "/v1/match", content=b"\xff\xfe{\x80}", headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [item["code"] for item in response.json()["errors"]] == ["json_invalid"]
