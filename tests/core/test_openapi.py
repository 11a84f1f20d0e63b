"""The committed OpenAPI document is what the app generates: regenerate with `make openapi`."""

from __future__ import annotations

import json
from pathlib import Path

from app.main import openapi_document

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    generated = json.loads(json.dumps(openapi_document()))
    assert committed == generated, "openapi/openapi.json is stale: run `make openapi` and commit it"


def test_every_operation_documents_its_errors_as_problem_json() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code.startswith(("4", "5"))}
            if path in {"/healthz", "/.well-known/jwks.json"}:
                continue
            assert errors, f"{method.upper()} {path} documents no error responses"
            for code, response in errors.items():
                if code == "422" and "application/json" in response.get("content", {}):
                    raise AssertionError(f"{method.upper()} {path} 422 is not problem+json")
                assert "application/problem+json" in response["content"], f"{method.upper()} {path} {code}"
