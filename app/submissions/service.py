"""Use cases of signed intake: verify, validate, route, assess, store all-or-nothing, receipt."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, InvalidSubmission, NotFound, ProblemItem, validation_items
from app.core.gc_pause import gc_paused
from app.jobs import service as jobs_service
from app.partners.repository import PartnerRepository
from app.security.jws import SUBMISSION_TYP, verify_jws
from app.security.service_key import ServiceSigner
from app.security.tokens import Caller
from app.submissions import repository
from app.submissions.models import EducationChild, HealthChild, Submission
from app.submissions.policy import PartnerView, decide_route
from app.submissions.rules import Assessment, Fate, assess_education_record, assess_health_record
from app.submissions.schemas import (
    EDUCATION_KINDS,
    EducationRecord,
    EotasRecord,
    HealthRecord,
    HealthRegisterSubmission,
    SchoolRollRecord,
    SubmissionKind,
    SubmissionPayload,
)
from app.submissions.schemas_out import Receipt, RecordFate, RecordIssue, SubmissionStatus

RECEIPT_TYP = "cme-receipt+jws"
MAX_REPORTED_ERRORS = 1000
# The Regulations' dates are calendar days in Wales.
LONDON = ZoneInfo("Europe/London")

_payload_adapter: TypeAdapter[SubmissionPayload] = TypeAdapter(SubmissionPayload)
_KIND_TAGS = frozenset(kind.value for kind in SubmissionKind)

HEALTH_COLUMNS = (
    "submission_id", "record_index", "recipient_la", "given_name", "middle_names", "family_name",
    "former_names", "date_of_birth", "address_lines", "town", "postcode", "postcode_norm",
    "address_is_last_known", "nhs_number", "flags",
)  # fmt: skip
EDUCATION_COLUMNS = (
    "submission_id", "record_index", "register", "la_id", "given_name", "middle_names", "family_name",
    "former_names", "date_of_birth", "address_lines", "town", "postcode", "postcode_norm", "nhs_number",
    "flags", "preferred_given_name", "preferred_family_name", "sex", "school_number", "school_name",
    "admission_date", "provision_type", "provision_name",
)  # fmt: skip


class SenderMismatch(Forbidden):
    slug, title = "sender-mismatch", "Sender is not the authenticated partner"


class RouteRefused(Forbidden):
    slug, title = "route-not-allowed", "This partner may not send this kind to this recipient"


class OutsideLegalWindow(Forbidden):
    slug, title = "outside-legal-window", "The Regulations do not cover health lists received on this date"


class SubmissionConflict(Conflict):
    slug, title = "submission-id-conflict", "Submission id already used for different content"


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: SubmissionStatus
    created: bool


def parse_payload(payload: bytes, settings: Settings) -> SubmissionPayload:
    try:
        return _payload_adapter.validate_json(
            payload, context={"nhs_number_enabled": settings.nhs_number_enabled}
        )
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        skip = 1 if errors and errors[0]["loc"] and errors[0]["loc"][0] in _KIND_TAGS else 0
        items = validation_items(errors[:MAX_REPORTED_ERRORS], skip_prefix=skip)
        detail = f"{exc.error_count()} structural error(s); the submission was not stored."
        if exc.error_count() > MAX_REPORTED_ERRORS:
            detail += f" The first {MAX_REPORTED_ERRORS} are listed."
        raise InvalidSubmission(detail, errors=items) from None


def _partner_view(session: Session, partner_id: str) -> PartnerView | None:
    partner = PartnerRepository(session).get(partner_id)
    if partner is None:
        return None
    return PartnerView(
        id=partner.id, kind=partner.kind, active=partner.status == "active", is_pilot_la=partner.is_pilot
    )


def _record_fates(assessments: Sequence[Assessment]) -> list[RecordFate]:
    return [
        RecordFate(
            record_index=index,
            fate=assessment.fate,
            issues=[RecordIssue(field=i.field, code=i.code, message=i.message) for i in assessment.issues],
        )
        for index, assessment in enumerate(assessments)
        if assessment.fate is not Fate.accepted
    ]


def _former(record: HealthRecord | EducationRecord) -> list[dict[str, str | None]]:
    if not record.former_names:
        return []
    return [{"given_name": n.given_name, "family_name": n.family_name} for n in record.former_names]


def _health_rows(
    submission_id: uuid.UUID,
    recipient: str,
    records: Sequence[HealthRecord],
    assessments: Sequence[Assessment],
) -> Iterator[tuple[Any, ...]]:
    for index, (record, assessment) in enumerate(zip(records, assessments, strict=True)):
        if assessment.fate is Fate.rejected:
            continue
        address = record.address
        yield (
            submission_id, index, recipient, record.given_name, record.middle_names, record.family_name,
            _former(record), record.date_of_birth,
            list(address.lines) if address else [], address.town if address else None,
            address.postcode if address else None, assessment.postcode_norm, record.address_is_last_known,
            assessment.nhs_number, [i.code.value for i in assessment.issues] if assessment.issues else [],
        )  # fmt: skip


def _education_rows(
    submission_id: uuid.UUID,
    kind: SubmissionKind,
    register_la: str,
    records: Sequence[EducationRecord],
    assessments: Sequence[Assessment],
) -> Iterator[tuple[Any, ...]]:
    for index, (record, assessment) in enumerate(zip(records, assessments, strict=True)):
        if assessment.fate is Fate.rejected:
            continue
        address = record.address
        school = record.school if isinstance(record, SchoolRollRecord) else None
        provision = record.provision if isinstance(record, EotasRecord) else None
        yield (
            submission_id, index, kind.value, register_la, record.given_name, record.middle_names,
            record.family_name, _former(record), record.date_of_birth,
            list(address.lines) if address else [], address.town if address else None,
            address.postcode if address else None, assessment.postcode_norm, assessment.nhs_number,
            [i.code.value for i in assessment.issues], record.preferred_given_name,
            record.preferred_family_name, record.sex.value if record.sex else None,
            school.number if school else None, school.name if school else None,
            record.admission_date if isinstance(record, SchoolRollRecord) else None,
            provision.type.value if provision else None, provision.name if provision else None,
        )  # fmt: skip


def status_of(submission: Submission) -> SubmissionStatus:
    return SubmissionStatus(
        submission_id=submission.id,
        status=submission.status,
        received_at=submission.received_at,
        job_id=submission.job_id,
        receipt=Receipt.model_validate(submission.receipt),
        receipt_jws=submission.receipt_jws,
    )


def _replay_or_conflict(existing: Submission, sender_id: str, payload_sha256: str) -> IngestOutcome:
    if existing.sender_id != sender_id or existing.payload_sha256 != payload_sha256:
        raise SubmissionConflict(
            "This submission id was already used with different content; choose a new id for new content."
        )
    return IngestOutcome(status=status_of(existing), created=False)


@gc_paused()
def ingest(
    session: Session,
    *,
    caller: Caller,
    body: bytes,
    settings: Settings,
    signer: ServiceSigner,
    now: dt.datetime,
    request_id: str | None,
) -> IngestOutcome:
    """Store a signed submission and all its accepted records in the caller's transaction, or nothing."""
    verified = verify_jws(session, body, typ=SUBMISSION_TYP, expected_partner=caller.partner_id, now=now)
    payload_sha256 = hashlib.sha256(verified.payload).hexdigest()
    submission = parse_payload(verified.payload, settings)
    # Keep the signature evidence, let the decoded payload bytes go: at 500,000 records they are 100 MB.
    verified = dataclasses.replace(verified, payload=b"")
    if submission.sender != caller.partner_id:
        raise SenderMismatch("The payload's sender must be the partner that signed it.")
    if len(submission.records) > settings.max_records:
        raise InvalidSubmission(
            f"A submission may carry at most {settings.max_records} records.",
            errors=[ProblemItem(field="records", code="too_many_records", message="Too many records.")],
        )
    existing = repository.get_submission(session, submission.submission_id)
    if existing is not None:
        return _replay_or_conflict(existing, caller.partner_id, payload_sha256)

    sender_view = _partner_view(session, caller.partner_id)
    recipient_view = _partner_view(session, submission.recipient) if submission.recipient else None
    if sender_view is None:
        raise NotFound("Unknown sender.")
    if submission.recipient is not None and recipient_view is None:
        raise RouteRefused("The recipient is not a registered partner.")
    decision = decide_route(submission.kind, sender_view, recipient_view)
    if not decision.allowed:
        raise RouteRefused(decision.reason)
    # R1.1/R1.2: health bodies share with LAs only under the Regulations, which have an end date; education
    # registers are the LAs' own duty and are not gated.
    received_on = now.astimezone(LONDON).date()
    if isinstance(submission, HealthRegisterSubmission) and not (
        settings.legal_window_start <= received_on <= settings.legal_window_end
    ):
        raise OutsideLegalWindow(
            f"Health lists are accepted from {settings.legal_window_start} to {settings.legal_window_end}"
            f" (UK time); this one was received on {received_on}. Nothing was stored."
        )

    as_of = submission.as_of
    if isinstance(submission, HealthRegisterSubmission):
        assessments = [assess_health_record(r, as_of) for r in submission.records]
    else:
        assessments = [assess_education_record(r, as_of) for r in submission.records]
    counts = {fate: 0 for fate in Fate}
    for assessment in assessments:
        counts[assessment.fate] += 1

    receipt = Receipt(
        submission_id=submission.submission_id,
        kind=submission.kind,
        sender=submission.sender,
        recipient=submission.recipient,
        scope=submission.scope,
        as_of=as_of,
        received_at=now,
        payload_sha256=payload_sha256,
        jws_sha256=verified.content_sha256,
        signer_kid=verified.kid,
        record_count=len(submission.records),
        accepted=counts[Fate.accepted],
        flagged=counts[Fate.flagged],
        rejected=counts[Fate.rejected],
        records=_record_fates(assessments),
    )
    receipt_json = receipt.model_dump(mode="json")
    receipt_jws = signer.sign(receipt_json, typ=RECEIPT_TYP)
    inserted = repository.insert_submission_if_absent(
        session,
        {
            "id": submission.submission_id,
            "sender_id": submission.sender,
            "recipient_id": submission.recipient,
            "kind": submission.kind.value,
            "scope": submission.scope,
            "as_of": as_of,
            "status": "stored",
            "received_at": now,
            "request_id": request_id,
            "payload_sha256": payload_sha256,
            "jws_sha256": verified.content_sha256,
            "jws_header": verified.header,
            "signer_kid": verified.kid,
            "signer_thumbprint": verified.thumbprint,
            "record_count": len(submission.records),
            "accepted_count": counts[Fate.accepted],
            "flagged_count": counts[Fate.flagged],
            "rejected_count": counts[Fate.rejected],
            "receipt": receipt_json,
            "receipt_jws": receipt_jws,
        },
    )
    if not inserted:
        # A concurrent request stored this id first; answer as a retry would be answered.
        existing = repository.get_submission(session, submission.submission_id)
        assert existing is not None  # the conflicting insert has committed
        return _replay_or_conflict(existing, caller.partner_id, payload_sha256)

    sid = submission.submission_id
    if isinstance(submission, HealthRegisterSubmission):
        assert submission.recipient is not None  # decide_route requires it
        repository.insert_rows(
            session,
            HealthChild,
            HEALTH_COLUMNS,
            _health_rows(sid, submission.recipient, submission.records, assessments),
        )
        job = jobs_service.enqueue(
            session,
            "match_health_list",
            {"submission_id": str(sid)},
            now=now,
            visible_to=[submission.sender, submission.recipient],
        )
    else:
        assert submission.kind in EDUCATION_KINDS and decision.register_la is not None
        repository.insert_rows(
            session,
            EducationChild,
            EDUCATION_COLUMNS,
            _education_rows(sid, submission.kind, decision.register_la, submission.records, assessments),
        )
        repository.supersede_register(
            session,
            sender_id=submission.sender,
            kind=submission.kind.value,
            scope=submission.scope,
            keep_id=sid,
            now=now,
        )
        job = jobs_service.enqueue(
            session,
            "rematch_after_register_change",
            {"submission_id": str(sid)},
            now=now,
            visible_to=[submission.sender],
        )
    repository.set_job(session, sid, job.id)
    audit_service.record(
        session,
        actor=caller,
        action="submission.stored",
        object_type="submission",
        object_ids=[str(sid)],
        purpose=submission.kind.value,
        now=now,
    )
    return IngestOutcome(
        status=SubmissionStatus(
            submission_id=sid,
            status="stored",
            received_at=now,
            job_id=job.id,
            receipt=receipt,
            receipt_jws=receipt_jws,
        ),
        created=True,
    )


def get_status(session: Session, *, caller: Caller, submission_id: uuid.UUID) -> SubmissionStatus:
    """Status and receipt, to the sender only: anyone else is told it does not exist."""
    submission = repository.get_submission(session, submission_id)
    if submission is None or submission.sender_id != caller.partner_id:
        raise NotFound("No such submission.")
    audit_service.record(
        session,
        actor=caller,
        action="submission.status_read",
        object_type="submission",
        object_ids=[str(submission_id)],
    )
    return status_of(submission)
