"""HTTP for signed intake: thin, the work is in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated, NoReturn

import orjson
from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.exceptions import RequestValidationError

from app.core.dependencies import SessionDep, SettingsDep
from app.core.errors import UnsupportedMediaType, problem_responses
from app.core.logging import request_id_var
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep
from app.submissions import service
from app.submissions.schemas_out import SubmissionStatus

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])

JOSE_MEDIA_TYPE = "application/jose"
JSON_MEDIA_TYPE = "application/json"
COMPACT_JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
_JSON_WHITESPACE = frozenset(b" \t\r\n")
_QUOTE = ord('"')
_JSON_STARTS = frozenset(b'"{[-0123456789tfn')


async def signed_body(request: Request) -> bytearray:
    """The raw compact JWS; the size limit middleware caps it while it is read.

    Sent as `application/jose` (the JWS itself), or as `application/json` whose body is one JSON string
    holding the compact JWS, for generated clients that know no `application/jose` (docs/clients.md). The
    JSON string is unwrapped here; other JSON is a 422, a body that is not JSON a 415.

    A `bytearray` the request does not keep a reference to (unlike `Request.body()`): `service.ingest`
    empties it once the signature is checked, so its memory (136 MB at 500,000 records) is free again
    before the records are validated.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (JOSE_MEDIA_TYPE, JSON_MEDIA_TYPE):
        raise UnsupportedMediaType(
            f"Submissions are compact JWS bodies sent as {JOSE_MEDIA_TYPE} "
            f"(or as one JSON string, {JSON_MEDIA_TYPE})."
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    if content_type == JSON_MEDIA_TYPE and not unwrap_json_string(body):
        _refuse_json_that_is_not_a_string(body)
    return body


def unwrap_json_string(body: bytearray) -> bool:
    """Replace a JSON string document by the text it holds, in place, and say so; leave any other body as
    it is (False).

    A compact JWS has no character JSON escapes, so the common case is a slice; an escaped string is
    decoded properly (it then holds something other than base64url, which intake refuses).
    """
    start, end = 0, len(body)
    while start < end and body[start] in _JSON_WHITESPACE:
        start += 1
    while end > start and body[end - 1] in _JSON_WHITESPACE:
        end -= 1
    if end - start < 2 or body[start] != _QUOTE or body[end - 1] != _QUOTE:
        return False
    if body.find(b"\\", start, end) == -1 and body.find(b'"', start + 1, end - 1) == -1:
        del body[end - 1 :]
        del body[: start + 1]
        return True
    try:
        text = orjson.loads(bytes(body[start:end]))
    except orjson.JSONDecodeError:
        return False
    if not isinstance(text, str):
        return False
    body[:] = text.encode("utf-8", "replace")
    return True


def _refuse_json_that_is_not_a_string(body: bytearray) -> NoReturn:
    """JSON of another kind (an object: the unsigned payload, say) is a 422; a body that does not even
    start like JSON (the JWS itself, mislabelled) is a 415 saying how to label it."""
    first = next((byte for byte in body if byte not in _JSON_WHITESPACE), None)
    if first is not None and first in _JSON_STARTS:
        raise RequestValidationError(
            [
                {
                    "type": "string_type",
                    "loc": ("body",),
                    "msg": "A submission sent as application/json is one JSON string: the compact JWS.",
                }
            ]
        )
    raise UnsupportedMediaType(
        f"This body is not JSON. Send the compact JWS itself as {JOSE_MEDIA_TYPE}, "
        f"or as one JSON string as {JSON_MEDIA_TYPE}."
    )


@router.post(
    "",
    operation_id="create_submission",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": SubmissionStatus,
            "description": "A retry of a stored submission: the original receipt.",
        },
        **problem_responses(400, 401, 403, 409, 413, 415, 422),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JOSE_MEDIA_TYPE: {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "description": "Compact JWS, typ cme-submission+jws.",
                    }
                },
                JSON_MEDIA_TYPE: {
                    "schema": {
                        "type": "string",
                        "pattern": COMPACT_JWS_PATTERN,
                        "description": "The same compact JWS as one JSON string, for clients that "
                        "cannot send application/jose (docs/clients.md).",
                    }
                },
            },
        }
    },
)
def create_submission(
    request: Request,
    response: Response,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    body: Annotated[bytearray, Depends(signed_body)],
) -> SubmissionStatus:
    """Take a signed submission; store it and every accepted record, or nothing; answer a signed receipt."""
    outcome = service.ingest(
        session,
        caller=caller,
        body=body,
        settings=settings,
        signer=request.app.state.service_signer,
        now=clock.now(),
        request_id=request_id_var.get(),
    )
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return outcome.status


@router.get("/{submission_id}", operation_id="get_submission", responses=problem_responses(401, 404))
def get_submission(submission_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> SubmissionStatus:
    """Status and receipt of a submission, for its sender only."""
    return service.get_status(session, caller=caller, submission_id=submission_id)
