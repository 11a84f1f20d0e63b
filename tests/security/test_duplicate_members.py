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


def _send_text(client: TestClient, session: Session, text: str) -> Any:
    board = create_partner(session, "W11000023", PartnerKind.local_health_board)
    create_partner(session, PILOT_LA, PartnerKind.local_authority)
    signed = sign_compact(text.replace("SENDER", board.id).encode(), board.key, typ=SUBMISSION_TYP).encode()
    return client.post(
        "/v1/submissions", content=signed, headers={**JOSE, **auth_header(board.key, board.id)}
    )


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ('"family_name": "Jones", "family_name": "Smith"', "family_name"),  # pydantic would keep Smith
        ('"date_of_birth": "2015-01-02", "date_of_birth": "2016-03-04"', "date_of_birth"),
        ('"address": {"postcode": "LL57 1AB", "postcode": "CF10 1AA"}', "address.postcode"),
        (
            '"former_names": [{"family_name": "A"}, {"family_name": "B", "family_name": "C"}]',
            "former_names.1.family_name",
        ),
        ('"family_name": "Jones", "family_n\\u0061me": "Smith"', "family_name"),  # the same name escaped
    ],
)
def test_a_member_named_twice_inside_a_record_is_refused_with_its_index_and_field(
    client: TestClient, session: Session, record: str, field: str
) -> None:
    body = payload("SENDER", [child(), child()])
    good = json.dumps(body["records"][0])
    text = json.dumps({**body, "records": []}).replace(
        '"records": []', f'"records": [{good}, {{"given_name": "Aled", {record}}}]'
    )
    response = _send_text(client, session, text)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"record_index": 1, "field": field, "code": "duplicate_member", "message": "Named more than once."}
    ]
    assert session.scalar(select(func.count()).select_from(Submission)) == 0


def test_an_envelope_member_escaped_differently_is_still_a_duplicate(
    client: TestClient, session: Session
) -> None:
    body = payload("SENDER", [child()])
    text = json.dumps(body)[:-1] + ', "\\u0073ender": "W11000099"}'  # the byte scan cannot see it
    response = _send_text(client, session, text)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"field": "sender", "code": "duplicate_member", "message": "Named more than once."}
    ]


def test_the_path_of_a_duplicate_is_found_at_any_depth() -> None:
    assert strict_json.duplicate_member_path(b'{"records": [{"a": 1}, {"b": {"c": 1, "c": 2}}]}') == (
        "records", 1, "b", "c",
    )  # fmt: skip
    assert strict_json.duplicate_member_path(b'{"records": [{"a": 1, "b": [1, {"a": 2}]}]}') is None
    assert strict_json.duplicate_member_path(b'{"records": [') is None  # not JSON: the parser says so
