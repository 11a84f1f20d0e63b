"""The OpenAPI document as a client generator reads it (issue 12, item 1; decision 0016).

FastAPI writes most of the document from the routes; what it cannot know is finished here, once, for every
operation:

- every error is `application/problem+json` with the `Problem` schema (the service never answers an error
  as `application/json`; FastAPI would put a response's `model` there);
- an operation that takes a body may answer 413 (`BodySizeLimitMiddleware`);
- `If-Match` is required where it is declared: the service answers 428 without it (the parameter stays
  optional in code so that a missing one is that 428, not a 422).

`ETag` and `Location` response headers are declared on their routes (`app.cme.router`).
"""

from __future__ import annotations

from typing import Any

from app.core.errors import PROBLEM_MEDIA_TYPE

PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_TOO_LARGE = (
    "Request body larger than its limit (`urn:cme-hub:problem:payload-too-large`): "
    "CME_MAX_BODY_BYTES for signed submissions, CME_MAX_JSON_BODY_BYTES for every other body."
)
IF_MATCH = "if-match"


def refine(document: dict[str, Any]) -> None:
    """Finish `document` in place (see the module docstring)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": _TOO_LARGE})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {
                        media_type: dict(spec) for media_type, spec in PROBLEM_CONTENT.items()
                    }
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name", "").lower() == IF_MATCH:
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "title": "If-Match"}


def duplicate_titles(document: dict[str, Any]) -> dict[str, list[str]]:
    """Schema titles shared by more than one component (generators name classes by title, and drop the
    second of two alike): title -> component names. Empty for a good document."""
    by_title: dict[str, list[str]] = {}
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        by_title.setdefault(str(schema.get("title", name)), []).append(name)
    return {title: names for title, names in by_title.items() if len(names) > 1}
