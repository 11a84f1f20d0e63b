"""Garbage at every door: whatever bytes arrive, the answer is a 4xx problem, never a 500.

Seeded and deterministic: the same few hundred inputs on every run. Each is built to reach a different
parser first: the bearer token (header, claims, signature segments), the submission envelope (a compact
JWS) and its payload, and the JSON bodies of the LA APIs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.jose_adapter import b64url_encode
from app.partners.models import PartnerKind
from app.security.jws import SUBMISSION_TYP
from app.security.tokens import TOKEN_TYP
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import auth_header

SEED = 20261126
CASES = 60


@pytest.fixture
def la(session: Session) -> TestPartner:
    return create_partner(session, "W06000001", PartnerKind.local_authority)


def _junk_json(rng: random.Random, depth: int = 0) -> object:
    pick = rng.randrange(9 if depth < 4 else 5)
    atoms: list[object] = [
        None,
        True,
        rng.randint(-(2**70), 2**70),
        rng.random() * 1e308,
        "\u0000\u202e\ud7ff",
    ]
    if pick < 5:
        return atoms[pick]
    if pick < 7:
        return [_junk_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["alg", "kid", "typ", "crit", "records", "given_name", "x"]): _junk_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}  # fmt: skip


def _junk_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == 1:
        return json.dumps(_junk_json(rng)).encode()
    if kind == 2:
        return b"[" * rng.randrange(900, 3000) + b"]" * rng.randrange(0, 3000)
    return "\ufeff{\u00e9}\ud800".encode("utf-8", "surrogatepass")


def _tokens(rng: random.Random, typ: str, kid: str) -> Iterator[str]:
    for _ in range(CASES):
        segments = [b64url_encode(_junk_bytes(rng)) for _ in range(3)]
        if rng.random() < 0.5:  # a header that passes, so the claims, key and signature checks are reached
            header = {
                "alg": "ES256",
                "typ": typ,
                "kid": kid if rng.random() < 0.7 else "k" * rng.randrange(1, 140),
            }
            segments[0] = b64url_encode(json.dumps(header).encode())
        yield ".".join(segments[: rng.randrange(1, 4)] if rng.random() < 0.2 else segments)


def _assert_problem(response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert 400 <= status < 500, (status, response.text[:200])  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


def test_garbage_bearer_tokens(client: TestClient, la: TestPartner) -> None:
    rng = random.Random(SEED)
    for token in _tokens(rng, TOKEN_TYP, la.key.kid):
        _assert_problem(client.get("/v1/cme/records", headers={"Authorization": f"Bearer {token}"}))


def test_garbage_submission_envelopes(client: TestClient, la: TestPartner) -> None:
    rng = random.Random(SEED + 1)
    headers = {**auth_header(la.key, la.id), "Content-Type": "application/jose"}
    for envelope in _tokens(rng, SUBMISSION_TYP, la.key.kid):
        body = _junk_bytes(rng) if rng.random() < 0.3 else envelope.encode()
        _assert_problem(client.post("/v1/submissions", content=body, headers=headers))


def test_garbage_json_bodies(client: TestClient, la: TestPartner) -> None:
    """Every write of the LA APIs (the ids name nothing: a body that parsed would meet a 404)."""
    rng = random.Random(SEED + 2)
    nobody = "00000000-0000-0000-0000-000000000000"
    writes = [
        ("POST", "/v1/match"),
        ("POST", "/v1/cme/subject-access-requests"),
        ("POST", f"/v1/cme/subject-access-requests/{nobody}/answer"),
        ("POST", f"/v1/cme/subject-access-requests/{nobody}/extension"),
        ("POST", f"/v1/matching/reviews/{nobody}/decision"),
        ("POST", f"/v1/cme/candidates/{nobody}/confirm"),
        ("POST", f"/v1/cme/candidates/{nobody}/resolve"),
        ("POST", f"/v1/cme/candidates/{nobody}/erasure"),
        ("PATCH", f"/v1/cme/records/{nobody}"),
        ("POST", f"/v1/cme/records/{nobody}/removal-events"),
        ("POST", f"/v1/cme/records/{nobody}/removal"),
        ("PUT", f"/v1/cme/records/{nobody}/restriction"),
        ("POST", f"/v1/cme/records/{nobody}/transfers"),
        ("POST", f"/v1/cme/records/{nobody}/erasure"),
        ("POST", f"/v1/cme/transfers/{nobody}/accept"),
        ("POST", f"/v1/cme/transfers/{nobody}/decline"),
    ]
    for _ in range(CASES * 2):
        role = rng.choice(["case_officer", "designated_officer", "data_protection_officer"])
        claims = {"officer": {"id": "officer-1", "role": role}}
        headers = {**auth_header(la.key, la.id, claims=claims), "Content-Type": "application/json"}
        headers["If-Match"] = rng.choice(['"1"', "*", "junk"])
        method, path = rng.choice(writes)
        _assert_problem(client.request(method, path, content=_junk_bytes(rng), headers=headers))


ROLES_READING = {
    "/v1/cme/records": ["case_officer", "data_protection_officer"],
    "/v1/cme/candidates": ["case_officer", "data_protection_officer"],
    "/v1/cme/due": ["case_officer", "data_protection_officer"],
    "/v1/matching/reviews": ["case_officer", "data_protection_officer"],
    "/v1/audit/checkpoints": ["data_protection_officer"],
    "/v1/statistics": ["statistics"],
}


def test_garbage_query_strings(client: TestClient, la: TestPartner) -> None:
    """List and read endpoints with junk parameters: answered (200) or refused with a problem, never a 500."""
    rng = random.Random(SEED + 3)
    values = ["", "-1", "0", "10000000000000000000000", "1e309", "nan", "Ω≈ç√", "%00", "\u202e", "a" * 5000,
              "2025-13", "2025-02-30", "W06000001", "00000000-0000-0000-0000-000000000000", "[]", "{}", "../"]  # fmt: skip
    paths = {
        "/v1/cme/records": [
            "status",
            "due_before",
            "postcode_district",
            "national_curriculum_year",
            "sensitive",
            "suspected_inaccurate",
            "sort",
            "limit",
            "cursor",
        ],
        "/v1/cme/candidates": [
            "status",
            "postcode_district",
            "national_curriculum_year",
            "sort",
            "limit",
            "cursor",
        ],
        "/v1/cme/due": ["before"],
        "/v1/matching/reviews": ["limit", "cursor"],
        "/v1/audit/checkpoints": ["limit", "cursor"],
        "/v1/statistics": ["la", "as_of", "period", "format"],
    }
    statuses = []
    for path in sorted(paths):  # each path answers its role without parameters
        headers = auth_header(
            la.key, la.id, claims={"officer": {"id": "officer-1", "role": ROLES_READING[path][0]}}
        )
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        statuses.append(response.status_code)
    for _ in range(CASES * 2):
        path = rng.choice(sorted(paths))
        params = {
            name: rng.choice(values) for name in rng.sample(paths[path], rng.randint(1, len(paths[path])))
        }
        # A role the authorisation table lets in, so that the parameters are read (not refused with 403).
        role = rng.choice(ROLES_READING[path])
        headers = auth_header(la.key, la.id, claims={"officer": {"id": "officer-1", "role": role}})
        response = client.get(path, params=params, headers=headers)
        statuses.append(response.status_code)
        if response.status_code != 200:
            _assert_problem(response)
    assert {200, 400, 422} <= set(statuses)  # the parameters were read: some pass, some are refused
