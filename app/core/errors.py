"""RFC 9457 problem details: one error base class, one renderer, no other error shape escapes."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.logging import note_auth_failure, request_id_var
from app.core.text import CONTROL_PATTERNS

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:cme-hub:problem:"
logger = logging.getLogger(__name__)


class ProblemItem(BaseModel):
    """One precise finding: where (record index, field path) and what, never the offending value."""

    record_index: int | None = Field(default=None, description="Index of the record in `records`, if any.")
    field: str | None = Field(default=None, description="Dotted path of the field, relative to the record.")
    code: str = Field(description="Stable machine-readable code of the finding.")
    message: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemItem] = Field(default_factory=list)


class ProblemError(Exception):
    """Base of every expected error; subclasses fix status, slug and title."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[ProblemItem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class InvalidCursor(ProblemError):
    """A page cursor this service did not issue (every paginated list answers it the same way)."""

    status, slug, title = 400, "invalid-cursor", "Invalid cursor"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class Unauthorized(ProblemError):
    """One generic type for every authentication failure: the precise reason is logged, never returned."""

    status, slug, title = 401, "unauthorized", "Authentication failed"

    def __init__(self, reason: str) -> None:
        super().__init__("The request could not be authenticated.", headers={"WWW-Authenticate": "Bearer"})
        self.reason = reason
        note_auth_failure(reason)  # counted by reason if the request is answered 401


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class RequestTimeout(ProblemError):
    status, slug, title = 408, "request-timeout", "Request body not received in time"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "too-many-requests", "Too many requests"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidSubmission(ProblemError):
    status, slug, title = 422, "invalid-submission", "Invalid submission"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class Overloaded(ProblemError):
    status, slug, title = 503, "overloaded", "Service at capacity"


def problem_response(
    status: int,
    slug: str,
    title: str,
    *,
    detail: str | None = None,
    instance: str | None = None,
    errors: list[ProblemItem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id_var.get(),
        errors=errors or [],
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def internal_error_response(instance: str) -> JSONResponse:
    """The answer to an unexpected exception (RequestContextMiddleware sends it): nothing about the cause."""
    return problem_response(500, "internal-error", "Internal server error", instance=instance)


def _loc_to_item(loc: tuple[int | str, ...], error_type: str, message: str) -> ProblemItem:
    """Turn a pydantic location into (record index, field): ('body', 'records', 3, 'date_of_birth')."""
    parts = [p for p in loc if p != "body"]
    if "records" in parts:
        at = parts.index("records")
        tail = parts[at + 1 :]
        if tail and isinstance(tail[0], int):
            field = ".".join(str(p) for p in tail[1:]) or None
            return ProblemItem(record_index=tail[0], field=field, code=error_type, message=message)
        parts = parts[at:]
    return ProblemItem(field=".".join(str(p) for p in parts) or None, code=error_type, message=message)


def _code_and_message(err: Mapping[str, Any]) -> tuple[str, str]:
    """A control character in a text field is reported as such, not as a mismatch of a regular expression."""
    if err["type"] == "string_pattern_mismatch" and (err.get("ctx") or {}).get("pattern") in CONTROL_PATTERNS:
        return "control_character", "Must not contain control characters (such as NUL)."
    return str(err["type"]), str(err["msg"])


def validation_items(errors: Sequence[Mapping[str, Any]], *, skip_prefix: int = 0) -> list[ProblemItem]:
    """Problem items from pydantic errors. `skip_prefix` drops leading location parts (a union tag)."""
    return [_loc_to_item(tuple(err["loc"][skip_prefix:]), *_code_and_message(err)) for err in errors]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        if isinstance(exc, Unauthorized):
            logger.info("authentication refused", extra={"reason": exc.reason})
        return problem_response(
            exc.status,
            exc.slug,
            exc.title,
            detail=exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
        )

    def invalid_request(request: Request, errors: list[ProblemItem]) -> JSONResponse:
        return problem_response(
            422,
            "invalid-request",
            "Invalid request",
            detail="The request does not match the documented schema.",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request(request, validation_items(list(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # A JSON body that is not UTF-8 is malformed JSON like any other: 422 json_invalid (FastAPI
            # answers 422 for a body that does not parse, but a bare 400 for one that does not decode).
            return invalid_request(
                request, [ProblemItem(code="json_invalid", message="The body is not UTF-8 encoded JSON.")]
            )
        slug = {
            404: "not-found",
            405: "method-not-allowed",
            408: RequestTimeout.slug,
            413: PayloadTooLarge.slug,
        }.get(exc.status_code, "http-error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(
            exc.status_code,
            slug,
            str(exc.detail),
            instance=request.url.path,
            headers=headers,
        )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the methods of the
    first route matching the path, and each operation is a route of its own (GET and PATCH of one record
    are two)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem+json errors a route can answer."""
    return {
        status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": _DESCRIPTIONS[status]}
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Malformed request.",
    401: "Authentication failed (one generic problem type; the reason is logged, not returned).",
    403: "The authenticated partner may not do this.",
    404: "No such resource visible to the caller.",
    408: "The request body did not arrive whole in time (`request-timeout`).",
    409: "Conflicts with what is stored (for example the same id with different content).",
    412: "The If-Match ETag is stale.",
    413: "Request body larger than the configured limit.",
    415: "Wrong content type.",
    422: "Validation failed; `errors` names record index and field.",
    428: "If-Match is required.",
    429: "This partner's rate limit is spent (`too-many-requests`, with Retry-After): retry later.",
    503: "A dependency is unavailable, or the service is at capacity (`overloaded`, with Retry-After).",
}
