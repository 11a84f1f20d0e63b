"""HTTP for signed intake: thin, the work is in service.py."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.core.dependencies import SessionDep, SettingsDep
from app.core.errors import UnsupportedMediaType, problem_responses
from app.core.logging import request_id_var
from app.security.clock import ClockDep
from app.security.dependencies import CallerDep
from app.submissions import service
from app.submissions.schemas_out import SubmissionStatus

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])

JOSE_MEDIA_TYPE = "application/jose"


async def signed_body(request: Request) -> bytearray:
    """The raw compact JWS; the size limit middleware caps it while it is read.

    A `bytearray` the request does not keep a reference to (unlike `Request.body()`): `service.ingest`
    empties it once the signature is checked, so its memory (136 MB at 500,000 records) is free again
    before the records are validated.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JOSE_MEDIA_TYPE:
        raise UnsupportedMediaType(f"Submissions are compact JWS bodies sent as {JOSE_MEDIA_TYPE}.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
    return body


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
                    "schema": {"type": "string", "description": "Compact JWS, typ cme-submission+jws."}
                }
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
