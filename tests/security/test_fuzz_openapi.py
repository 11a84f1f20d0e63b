"""Schemathesis over the committed `openapi/openapi.json`, against the app in process.

Every operation is fuzzed as two callers: an LA case system acting for a case officer, and a health board.
Each request carries a fresh signed bearer token (a jti is accepted once), so authentication passes and
the fuzzer reaches the routes' own validation. `POST /v1/submissions` is fuzzed through the submission
payload's JSON Schema, with `sender` pinned to the caller, and each generated payload is signed as a
compact JWS with the caller's key (a custom `application/jose` serialiser), so intake validation is what
answers, not the signature check. Valid and invalid data are both generated (schemathesis' positive and
negative modes).

Checks on every response: no 5xx; the status code is one the operation documents; the content type and
headers are documented ones; the body conforms to its documented schema.

Seeded (derandomised): the same requests on every run. `CME_FUZZ_EXAMPLES` sets the examples per
operation, caller and mode (default 12; try `CME_FUZZ_EXAMPLES=500` for a long run), and
`CME_FUZZ_SEED=random` lets hypothesis pick fresh random inputs (failures print how to reproduce them).
"""

from __future__ import annotations

import collections
import contextvars
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from pydantic import TypeAdapter
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from app.partners.models import PartnerKind
from app.submissions.schemas import SubmissionPayload
from tests.support.partners import TestPartner, create_partner
from tests.support.tokens import bearer_token, signed_body

OPENAPI = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
EXAMPLES = int(os.environ.get("CME_FUZZ_EXAMPLES", "12"))
DERANDOMIZE = os.environ.get("CME_FUZZ_SEED", "") != "random"
SUBMISSIONS = ("POST", "/v1/submissions")
# A case schemathesis draws for one operation of the OpenAPI document.
FuzzCase = schemathesis.Case[schemathesis.APIOperation[Any, Any, Any, Any]]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Caller:
    partner_id: str
    kind: PartnerKind
    claims: dict[str, Any]


CALLERS = {
    "la_case_officer": Caller(
        "W06000001", PartnerKind.local_authority, {"officer": {"id": "officer-1", "role": "case_officer"}}
    ),
    "health_board": Caller("W11000023", PartnerKind.local_health_board, {}),
}

_signer: contextvars.ContextVar[TestPartner] = contextvars.ContextVar("fuzz_signer")


@schemathesis.serializer("application/jose")
def _signed_submission(ctx: schemathesis.SerializationContext, value: Any) -> bytes:
    """The generated payload (any JSON value), signed as a compact JWS with the calling partner's key."""
    partner = _signer.get()
    payload = value if isinstance(value, bytes) else json.dumps(value).encode()
    return signed_body(partner.key, payload)


def _document(sender: str) -> dict[str, Any]:
    """The committed document, with the submission body described by the payload it signs."""
    document: dict[str, Any] = json.loads(OPENAPI.read_text(encoding="utf-8"))
    payload = TypeAdapter(SubmissionPayload).json_schema(ref_template="#/components/schemas/Fuzz{model}")
    for name, definition in payload.pop("$defs").items():
        properties = definition.get("properties", {})
        if "sender" in properties:  # signed by the caller, so the submission gets past "sender = signer"
            properties["sender"] = {"const": sender}
        if "nhs_number" in properties:  # off in this deployment (a 422 for every record carrying one)
            properties["nhs_number"] = {"type": "null"}
        document["components"]["schemas"][f"Fuzz{name}"] = definition
    body = document["paths"][SUBMISSIONS[1]][SUBMISSIONS[0].lower()]["requestBody"]
    body["content"]["application/jose"]["schema"] = payload
    return document


@cache
def _schema(sender: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(_document(sender))


def _cases() -> list[Any]:
    """(method, path, mode) for every operation; negative mode only where there is something to negate."""
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    cases = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            modes = [schemathesis.GenerationMode.POSITIVE]
            if operation.get("parameters") or operation.get("requestBody"):
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            cases += [pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
                      for mode in modes]  # fmt: skip
    return cases


def _send(client: TestClient, case: FuzzCase, headers: dict[str, str]) -> httpx.Response:
    """Send `case` through the app's TestClient (schemathesis' requests-style kwargs, translated)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    request_headers = dict(kwargs.get("headers") or {})
    if kwargs.get("cookies"):
        request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), (bytes, str)):
        body["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        body["data"] = kwargs["data"]
    response: httpx.Response = client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=request_headers, **body
    )
    return response


# schemathesis draws from `random` inside its strategies; hypothesis warns about it (harmless here).
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("caller_name", sorted(CALLERS))
@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_fuzz_operation(
    client: TestClient,
    session: Session,
    method: str,
    path: str,
    caller_name: str,
    mode: schemathesis.GenerationMode,
) -> None:
    caller = CALLERS[caller_name]
    partner = create_partner(session, caller.partner_id, caller.kind)
    operation = _schema(caller.partner_id)[path][method]
    token = _signer.set(partner)
    statuses: list[int] = []
    try:

        @hypothesis_settings(
            max_examples=EXAMPLES,
            derandomize=DERANDOMIZE,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=True,
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: FuzzCase) -> None:
            headers = {
                "Authorization": f"Bearer {bearer_token(partner.key, partner.id, claims=caller.claims)}"
            }
            case.headers.update(headers)
            response = _send(client, case, headers)
            statuses.append(response.status_code)
            case.validate_response(response, checks=CHECKS, headers=headers)

        run()
        if (method, path) == SUBMISSIONS:  # the signatures passed: intake's own checks answered
            assert set(statuses) & {201, 403, 422}, collections.Counter(statuses)
    finally:
        _signer.reset(token)
