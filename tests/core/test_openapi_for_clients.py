"""What a client generator needs from the OpenAPI document (issue 12, item 1; decision 0016): distinct schema
titles, errors as problem+json with the Problem schema, the concurrency contract (ETag, required If-Match),
413 wherever a body is taken, CSV statistics as an operation of their own, and a submission body a generator
knows. `tests/integration/test_generated_client.py` proves it with a generated client."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.core.openapi import duplicate_titles
from app.main import openapi_document

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RECORD_ANSWERS = {
    ("get", "/v1/cme/records/{record_id}", "200"),
    ("patch", "/v1/cme/records/{record_id}", "200"),
    ("put", "/v1/cme/records/{record_id}/restriction", "200"),
    ("post", "/v1/cme/candidates/{candidate_id}/confirm", "201"),
    ("post", "/v1/cme/transfers/{transfer_id}/accept", "201"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, item in document["paths"].items() for m, op in item.items()]


def test_no_two_schemas_share_a_title(document: dict[str, Any]) -> None:
    assert duplicate_titles(document) == {}
    assert {"MatchRequest", "MatchRecord", "ChildDetail"} <= set(document["components"]["schemas"])


def test_every_error_is_problem_json_with_the_problem_schema(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"] == PROBLEM, f"{method.upper()} {path} {status}"


def test_every_operation_taking_a_body_documents_413(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        if "requestBody" in operation:
            assert "413" in operation["responses"], f"{method.upper()} {path}"


def test_if_match_is_required_wherever_428_is_answered(document: dict[str, Any]) -> None:
    answering_428 = 0
    for method, path, operation in _operations(document):
        headers = {p["name"].lower(): p for p in operation.get("parameters", []) if p["in"] == "header"}
        if "428" in operation["responses"]:
            answering_428 += 1
            assert headers["if-match"]["required"] is True, f"{method.upper()} {path}"
            assert "412" in operation["responses"], f"{method.upper()} {path}"
        else:
            assert "if-match" not in headers, f"{method.upper()} {path}"
    assert answering_428 == 4


def test_record_answers_declare_their_etag(document: dict[str, Any]) -> None:
    for method, path, status in RECORD_ANSWERS:
        response = document["paths"][path][method]["responses"][status]
        assert response["headers"]["ETag"]["required"] is True, f"{method.upper()} {path}"
    created = document["paths"]["/v1/cme/candidates/{candidate_id}/confirm"]["post"]["responses"]["201"]
    assert "Location" in created["headers"]


def test_csv_statistics_are_an_operation_of_their_own(document: dict[str, Any]) -> None:
    csv = document["paths"]["/v1/statistics.csv"]["get"]
    assert list(csv["responses"]["200"]["content"]) == ["text/csv"]
    json_params = {p["name"] for p in document["paths"]["/v1/statistics"]["get"]["parameters"]}
    assert {p["name"] for p in csv["parameters"]} == json_params - {"format"}


def test_a_submission_is_also_a_json_string(document: dict[str, Any]) -> None:
    content = document["paths"]["/v1/submissions"]["post"]["requestBody"]["content"]
    assert list(content) == ["application/jose", "application/json"]
    as_json = content["application/json"]["schema"]
    assert as_json["type"] == "string"
    assert re.fullmatch(as_json["pattern"], "eyJh.eyJi.c2ln")
    assert not re.fullmatch(as_json["pattern"], "{}")
