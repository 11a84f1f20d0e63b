"""Outbound shapes: the receipt a sender gets (and can verify against /.well-known/jwks.json)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from app.submissions.rules import Fate, IssueCode
from app.submissions.schemas import SubmissionKind


class RecordIssue(BaseModel):
    field: str
    code: IssueCode
    message: str


class RecordFate(BaseModel):
    record_index: int
    fate: Fate
    issues: list[RecordIssue]


class AuditHead(BaseModel):
    seq: int
    hash: str


class Receipt(BaseModel):
    submission_id: uuid.UUID
    kind: SubmissionKind
    sender: str
    recipient: str | None
    scope: str | None
    as_of: dt.date
    received_at: dt.datetime
    payload_sha256: str = Field(
        description="SHA-256 (hex) of the signed payload: the content compared on retries."
    )
    jws_sha256: str = Field(description="SHA-256 (hex) of the exact compact JWS bytes received.")
    signer_kid: str
    record_count: int
    accepted: int
    flagged: int
    rejected: int
    records: list[RecordFate] = Field(
        description="Every record that is not plainly accepted, with its fate and findings. "
        "A record index not listed here was accepted without findings."
    )
    audit_head: AuditHead | None = Field(
        default=None,
        description="The service's audit chain head (newest event's seq and hash) when the submission was "
        "received. Keep the signed receipt: `cme audit verify --receipt` proves from it that the log up to "
        "there was neither cut nor rewritten. Absent from receipts issued before 2026-12-07.",
    )


class SubmissionStatus(BaseModel):
    submission_id: uuid.UUID
    status: str = Field(description="stored, then matching and matched for health registers.")
    received_at: dt.datetime
    job_id: uuid.UUID | None = Field(description="The background job processing it (GET /v1/jobs/{id}).")
    receipt: Receipt
    receipt_jws: str = Field(
        description="The receipt as a compact JWS signed by the service (typ cme-receipt+jws)."
    )
