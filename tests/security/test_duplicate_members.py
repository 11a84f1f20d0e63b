"""Strict JSON wherever signed evidence is read (issue 11, item 3): a member named twice is refused in a
JOSE header, in a token's claims and in a signed submission, so no two readers can see different contents."""

from __future__ import annotations

import json
import typing
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import strict_json
from app.partners.models import PartnerKind
from app.submissions.models import Submission
from app.submissions.schemas import (
    ENVELOPE_MEMBERS,
    EducationRecord,
    EotasRecord,
    HealthRecord,
    SchoolRollRecord,
)
from tests.submissions.conftest import PILOT_LA, child, payload
from tests.support.keys import sign_compact
from tests.support.partners import create_partner
from tests.support.tokens import SUBMISSION_TYP, TOKEN_TYP, auth_header, token_claims

JOSE = {"Content-Type": "application/jose"}


def test_the_strict_reader_refuses_a_member_named_twice_at_any_depth() -> None:
    assert strict_json.loads(b'{"a": {"b": 1}, "c": [{"b": 2}]}') == {"a": {"b": 1}, "c": [{"b": 2}]}
    for document in (b'{"a": 1, "a": 1}', b'{"x": {"b": 1, "b": 2}}', b'[{"k": 1, "k": 2}]'):
        with pytest.raises(strict_json.DuplicateMember):
            strict_json.loads(document)


def test_a_header_naming_kid_twice_is_refused(client: TestClient, session: Session) -> None:
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    header = f'{{"alg":"ES256","typ":"{TOKEN_TYP}","kid":"other","kid":"{board.key.kid}"}}'.encode()
    token = sign_compact(token_claims(board.id), board.key, typ=TOKEN_TYP, header_json=header)
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    # The same token with the member once is accepted (the job is simply not found).
    once = f'{{"alg":"ES256","typ":"{TOKEN_TYP}","kid":"{board.key.kid}"}}'.encode()
    token = sign_compact(token_claims(board.id), board.key, typ=TOKEN_TYP, header_json=once)
    assert (
        client.get(f"/v1/jobs/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"}).status_code
        == 404
    )


def test_claims_naming_aud_twice_are_refused(client: TestClient, session: Session) -> None:
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    claims = token_claims(board.id)
    text = json.dumps(claims)
    twice = text[:-1] + ', "aud": "https://elsewhere.invalid"}'
    token = sign_compact(twice.encode(), board.key, typ=TOKEN_TYP)
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize("member", ["submission_id", "sender", "recipient"])
def test_a_submission_naming_an_envelope_member_twice_is_refused_and_nothing_stored(
    client: TestClient, session: Session, member: str
) -> None:
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    create_partner(session, PILOT_LA, PartnerKind.local_authority)
    body = payload(board.id, [child()])
    text = json.dumps(body)
    twice = text[:-1] + f', "{member}": {json.dumps(body[member])}}}'
    signed = sign_compact(twice.encode(), board.key, typ=SUBMISSION_TYP).encode()
    response = client.post(
        "/v1/submissions", content=signed, headers={**JOSE, **auth_header(board.key, board.id)}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": member, "code": "duplicate_member", "message": "Named more than once."}
    ]
    assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_a_record_value_quoting_a_member_name_is_no_duplicate(client: TestClient, session: Session) -> None:
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    create_partner(session, PILOT_LA, PartnerKind.local_authority)
    body = payload(
        board.id, [child(address={"lines": ['Flat "sender": 2'], "town": "Bangor", "postcode": "LL57 1AB"})]
    )
    signed = sign_compact(json.dumps(body).encode(), board.key, typ=SUBMISSION_TYP).encode()
    response = client.post(
        "/v1/submissions", content=signed, headers={**JOSE, **auth_header(board.key, board.id)}
    )
    assert response.status_code == 201, response.text


def test_no_record_field_shares_a_name_with_an_envelope_member() -> None:
    """What makes the byte scan exact: these names can only be the submission's own members."""

    def names(model: Any) -> set[str]:
        found = set(getattr(model, "model_fields", {}))
        for field in getattr(model, "model_fields", {}).values():
            for inner in (field.annotation, *typing.get_args(field.annotation)):
                for leaf in (inner, *typing.get_args(inner)):
                    if isinstance(leaf, type) and issubclass(leaf, BaseModel):
                        found |= names(leaf)
        return found

    record_fields = set().union(
        *(names(m) for m in (HealthRecord, EducationRecord, SchoolRollRecord, EotasRecord))
    )
    assert {"given_name", "postcode", "number", "type"} <= record_fields  # nested models are walked
    assert not record_fields & set(ENVELOPE_MEMBERS)
