"""Use cases of signed intake: verify, validate, route, assess, store all-or-nothing, receipt."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.core import strict_json
from app.core.config import Settings
from app.core.errors import (
    Conflict,
    Forbidden,
    InvalidSubmission,
    NotFound,
    ProblemError,
    ProblemItem,
    validation_items,
)
from app.core.gc_pause import gc_paused
from app.core.jose_adapter import compact_shape_problem, strip_surrounding_whitespace
from app.jobs import service as jobs_service
from app.observability import metrics
from app.partners import repository as partners_repository
from app.security.caller import Caller
from app.security.jws import RECEIPT_TYP, SUBMISSION_TYP, VerifiedJws, verify_jws
from app.security.service_key import ServiceSigner
from app.submissions import repository
from app.submissions.models import EducationChild, HealthChild, Submission
from app.submissions.policy import PartnerView, RouteDecision, decide_route
from app.submissions.rules import (
    Assessment,
    Fate,
    assess_education_record,
    assess_health_record,
    plainly_accepted_item,
)
from app.submissions.schemas import (
    EDUCATION_KINDS,
    ENVELOPE_MEMBERS,
    EducationRecord,
    EotasRecord,
    HealthRecord,
    HealthRecordItem,
    HealthRegisterBulk,
    HealthRegisterSubmission,
    SchoolRollRecord,
    SubmissionKind,
    SubmissionPayload,
)
from app.submissions.schemas_out import AuditHead, Receipt, RecordFate, RecordIssue, SubmissionStatus

_RELEASE_BATCH = 10_000
_R = TypeVar("_R")
MAX_REPORTED_ERRORS = 1000
# The Regulations' dates are calendar days in Wales.
LONDON = ZoneInfo("Europe/London")

_payload_adapter: TypeAdapter[SubmissionPayload] = TypeAdapter(SubmissionPayload)
_bulk_health_adapter: TypeAdapter[HealthRegisterBulk] = TypeAdapter(HealthRegisterBulk)
_HEALTH_LISTS = (HealthRegisterSubmission, HealthRegisterBulk)
_KIND_TAGS = frozenset(kind.value for kind in SubmissionKind)
# Only picks which schema is tried first; the schemas decide.
_HEALTH_KIND = re.compile(rb'"kind"\s*:\s*"health_register"')

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


class NotCompactJws(ProblemError):
    """The body is not shaped as a compact JWS at all (empty, unsigned JSON, ...): said as such, to a caller
    whose bearer token was already accepted, so that a partner does not go looking for a key problem."""

    status, slug, title = 400, "not-compact-jws", "The body is not a compact JWS"


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


def parse_payload(
    payload: bytes, settings: Settings, *, bulk: bool = False, max_errors: int | None = MAX_REPORTED_ERRORS
) -> SubmissionPayload | HealthRegisterBulk:
    """The validated submission, or InvalidSubmission listing the structural errors (the first
    `max_errors` of them; None: all, as `cme validate` reports them).

    With `bulk`, a health list is first validated as `HealthRegisterBulk` (records as dicts: faster and
    smaller); a payload that fails there is validated again against `SubmissionPayload`, which decides.
    """
    context = _context(settings)
    if bulk and _HEALTH_KIND.search(payload):
        try:
            return _bulk_health_adapter.validate_json(payload, context=context)
        except ValidationError:
            pass  # another kind, or errors: the full schema below reports them
    try:
        return _payload_adapter.validate_json(payload, context=context)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        skip = 1 if errors and errors[0]["loc"] and errors[0]["loc"][0] in _KIND_TAGS else 0
        items = validation_items(errors[:max_errors], skip_prefix=skip)
        detail = f"{exc.error_count()} structural error(s); the submission was not stored."
        if max_errors is not None and exc.error_count() > max_errors:
            detail += f" The first {max_errors} are listed."
        raise InvalidSubmission(detail, errors=items) from None


def _context(settings: Settings) -> dict[str, Any]:
    return {"nhs_number_enabled": settings.nhs_number_enabled}


def _release(body: bytes | bytearray) -> None:
    """Empty a `bytearray` body once verified: everything later works from the decoded payload."""
    if isinstance(body, bytearray):
        # BufferError: a view of it is still alive somewhere; then it is freed with the request.
        with contextlib.suppress(BufferError):
            body.clear()


def _partner_view(session: Session, partner_id: str) -> PartnerView | None:
    partner = partners_repository.get_partner(session, partner_id)
    if partner is None:
        return None
    return PartnerView(
        id=partner.id, kind=partner.kind, active=partner.status == "active", is_pilot_la=partner.is_pilot
    )


class _Tally:
    """Fates counted while the rows stream out; the receipt lists every record not plainly accepted."""

    __slots__ = ("counts", "reported")

    def __init__(self) -> None:
        self.counts = dict.fromkeys(Fate, 0)
        self.reported: list[RecordFate] = []

    def add(self, index: int, assessment: Assessment) -> None:
        fate = assessment.fate
        self.counts[fate] += 1
        if fate is not Fate.accepted:
            self.reported.append(
                RecordFate(
                    record_index=index,
                    fate=fate,
                    issues=[
                        RecordIssue(field=i.field, code=i.code, message=i.message) for i in assessment.issues
                    ],
                )
            )


def _consumed(records: list[_R]) -> Iterator[_R]:
    """Yield the records in order, taking each batch out of the list as it goes.

    A record is then freed soon after its row is built, while PostgreSQL is still busy with earlier rows,
    instead of all 500,000 at once after the last row (0.4 s spent while the sender waits).
    """
    while records:
        batch = records[:_RELEASE_BATCH]
        del records[:_RELEASE_BATCH]
        yield from batch


def _kept_health(
    records: Iterable[HealthRecord], as_of: dt.date, tally: _Tally
) -> Iterator[tuple[int, HealthRecord, Assessment]]:
    """Assess every record, count its fate, and yield those that are stored (not rejected).

    The counts are complete once the iterator is exhausted.
    """
    add, accepted_fate, rejected_fate = tally.add, Fate.accepted, Fate.rejected
    accepted = 0
    for index, record in enumerate(records):
        assessment = assess_health_record(record, as_of)
        if assessment.fate is accepted_fate:
            accepted += 1
        else:
            add(index, assessment)
            if assessment.fate is rejected_fate:
                continue
        yield index, record, assessment
    tally.counts[accepted_fate] += accepted


def _former(record: HealthRecord | EducationRecord) -> list[dict[str, str | None]]:
    if not record.former_names:
        return []
    return [{"given_name": n.given_name, "family_name": n.family_name} for n in record.former_names]


def _health_rows(
    submission_id: uuid.UUID, recipient: str, kept: Iterator[tuple[int, HealthRecord, Assessment]]
) -> Iterator[tuple[Any, ...]]:
    for index, record, assessment in kept:
        address = record.address
        yield (
            submission_id, index, recipient, record.given_name, record.middle_names, record.family_name,
            _former(record), record.date_of_birth,
            list(address.lines) if address else [], address.town if address else None,
            address.postcode if address else None, assessment.postcode_norm, record.address_is_last_known,
            assessment.nhs_number, [i.code.value for i in assessment.issues] if assessment.issues else [],
        )  # fmt: skip


# One character sequence of JSON text that decodes to a character COPY's text format or the JSON encoder
# must escape: a backslash, a double quote or a control character (raw ones are invalid JSON).
_ESCAPE_NEEDED = re.compile(rb"\\(?:[^/u]|u00[01]|u005[cC]|u0022)")


def copy_lines_safe(payload: bytes) -> bool:
    """Whether no string in this JSON payload holds a character that COPY text format would escape.

    Then every value can be written into a COPY line as it is (`_health_lines`); otherwise the rows go
    as value tuples, which psycopg escapes.
    """
    start = payload.find(b"\\")
    return start < 0 or _ESCAPE_NEEDED.search(payload, start) is None


def _health_lines(
    submission_id: uuid.UUID, recipient: str, kept: Iterator[tuple[int, HealthRecord, Assessment]]
) -> Iterator[str]:
    """`_health_rows` as COPY text lines (HEALTH_COLUMNS), for payloads where `copy_lines_safe` holds."""
    head, recipient_field = f"{submission_id}\t", f"\t{recipient}\t"
    for index, record, assessment in kept:
        yield _health_line(head, index, recipient_field, record, assessment)


def _health_line(
    head: str, index: int, recipient_field: str, record: HealthRecord, assessment: Assessment
) -> str:
    dumps, null = orjson.dumps, "\\N"
    given, middle, family, dob = (
        record.given_name, record.middle_names, record.family_name, record.date_of_birth,
    )  # fmt: skip
    address = record.address
    if address is None:
        lines, town, postcode = "[]", null, null
    else:
        lines = dumps(address.lines).decode() if address.lines else "[]"
        town = null if address.town is None else address.town
        postcode = null if address.postcode is None else address.postcode
    former = dumps(_former(record)).decode() if record.former_names else "[]"
    issues = assessment.issues
    flags = dumps([i.code.value for i in issues]).decode() if issues else "[]"
    postcode_norm, nhs_number = assessment.postcode_norm, assessment.nhs_number
    return (
        f"{head}{index}{recipient_field}{null if given is None else given}\t"
        f"{null if middle is None else middle}\t{null if family is None else family}\t{former}\t"
        f"{null if dob is None else dob.isoformat()}\t{lines}\t{town}\t{postcode}\t"
        f"{null if postcode_norm is None else postcode_norm}\t{'t' if record.address_is_last_known else 'f'}\t"
        f"{null if nhs_number is None else nhs_number}\t{flags}\n"
    )


def _health_item_lines(
    submission_id: uuid.UUID,
    recipient: str,
    items: Iterable[HealthRecordItem],
    as_of: dt.date,
    tally: _Tally,
    context: dict[str, Any],
) -> Iterator[str]:
    """COPY text lines of a bulk-validated health list (`HealthRegisterBulk`), assessing as it goes.

    A plainly accepted record is written straight from its dict; any other (a few per cent) becomes a
    `HealthRecord` for the full rules and `_health_line`. Same rows and fates as the model path (tested).
    """
    head, recipient_field = f"{submission_id}\t", f"\t{recipient}\t"
    dumps, null, accepted_fate, rejected_fate = orjson.dumps, "\\N", Fate.accepted, Fate.rejected
    accepted = 0
    for index, item in enumerate(items):
        assessment = plainly_accepted_item(item, as_of)
        if assessment is None:
            record = HealthRecord.model_validate(item, context=context)
            assessment = assess_health_record(record, as_of)
            if assessment.fate is accepted_fate:
                accepted += 1
            else:
                tally.add(index, assessment)
                if assessment.fate is rejected_fate:
                    continue
            yield _health_line(head, index, recipient_field, record, assessment)
            continue
        accepted += 1
        # Plainly accepted: names, birth date and an address with a valid postcode are present.
        address = item["address"]
        assert address is not None  # as plainly_accepted_item checked
        middle, lines, town, former = (
            item.get("middle_names"), address.get("lines"), address.get("town"), item.get("former_names"),
        )  # fmt: skip
        lines_json = dumps(lines).decode() if lines else "[]"
        former_json = (
            dumps(
                [{"given_name": n.get("given_name"), "family_name": n.get("family_name")} for n in former]
            ).decode()
            if former
            else "[]"
        )
        yield (
            f"{head}{index}{recipient_field}{item['given_name']}\t{null if middle is None else middle}\t"
            f"{item['family_name']}\t{former_json}\t{item['date_of_birth']}\t{lines_json}\t"
            f"{null if town is None else town}\t{address['postcode']}\t{assessment.postcode_norm}\t"
            f"{'t' if item.get('address_is_last_known') else 'f'}\t{null}\t[]\n"
        )
    tally.counts[accepted_fate] += accepted


def _education_rows(
    submission_id: uuid.UUID,
    kind: SubmissionKind,
    register_la: str,
    records: Iterable[EducationRecord],
    as_of: dt.date,
    tally: _Tally,
) -> Iterator[tuple[Any, ...]]:
    add = tally.add
    for index, record in enumerate(records):
        assessment = assess_education_record(record, as_of)
        add(index, assessment)
        if assessment.fate is Fate.rejected:
            continue
        address = record.address
        school = record.school if isinstance(record, SchoolRollRecord) else None
        provision = record.provision if isinstance(record, EotasRecord) else None
        yield (
            submission_id, index, kind.value, register_la, record.given_name, record.middle_names,
            record.family_name, _former(record),
            record.date_of_birth if assessment.keeps_date_of_birth else None,
            list(address.lines) if address else [], address.town if address else None,
            address.postcode if address else None, assessment.postcode_norm, assessment.nhs_number,
            [i.code.value for i in assessment.issues], record.preferred_given_name,
            record.preferred_family_name, record.sex.value if record.sex else None,
            school.number if school else None, school.name if school else None,
            record.admission_date if isinstance(record, SchoolRollRecord) else None,
            provision.type.value if provision else None, provision.name if provision else None,
        )  # fmt: skip


def _audit_head(session: Session) -> AuditHead:
    seq, head_hash = audit_service.head(session)
    return AuditHead(seq=seq, hash=head_hash)


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


def _duplicate_item(path: tuple[str | int, ...]) -> ProblemItem:
    """`("records", 3, "address", "town")` -> record 3, field `address.town`."""
    index: int | None = None
    if len(path) > 2 and path[0] == "records" and isinstance(path[1], int):
        index, path = path[1], path[2:]
    field = ".".join(str(part) for part in path)
    return ProblemItem(
        record_index=index, field=field, code="duplicate_member", message="Named more than once."
    )


def ingest(
    session: Session,
    *,
    caller: Caller,
    body: bytes | bytearray,
    settings: Settings,
    signer: ServiceSigner,
    now: dt.datetime,
    request_id: str | None,
) -> IngestOutcome:
    """Store a signed submission and all its accepted records in the caller's transaction, or nothing.

    A `bytearray` body is emptied once its signature has been checked (see `router.signed_body`). Counted
    in the metrics by kind and fate, and records by fate (labels: enums and problem types only).
    """
    try:
        outcome = _ingest(
            session,
            caller=caller,
            body=body,
            settings=settings,
            signer=signer,
            now=now,
            request_id=request_id,
        )
    except ProblemError as exc:
        metrics.submission_refused(exc.slug)
        raise
    receipt = outcome.status.receipt
    if outcome.created:
        metrics.submission_stored(
            receipt.kind.value,
            {"accepted": receipt.accepted, "flagged": receipt.flagged, "rejected": receipt.rejected},
        )
    else:
        metrics.submission_replayed(receipt.kind.value)
    return outcome


@dataclass(frozen=True, slots=True)
class _Envelope:
    """A submission whose signature, envelope and sender were checked, with what its row keeps of the JWS."""

    verified: VerifiedJws  # the signature evidence; its decoded payload already let go
    submission: SubmissionPayload | HealthRegisterBulk
    payload_sha256: str
    record_count: int  # counted before the records are consumed
    lines_safe: bool  # the records may stream to PostgreSQL as COPY text


@gc_paused()
def _ingest(
    session: Session,
    *,
    caller: Caller,
    body: bytes | bytearray,
    settings: Settings,
    signer: ServiceSigner,
    now: dt.datetime,
    request_id: str | None,
) -> IngestOutcome:
    envelope = _verified_envelope(session, caller=caller, body=body, settings=settings, now=now)
    submission = envelope.submission
    existing = repository.get_submission(session, submission.submission_id)
    if existing is not None:
        return _replay_or_conflict(existing, caller.partner_id, envelope.payload_sha256)
    decision = _allowed_route(session, caller=caller, submission=submission, settings=settings, now=now)
    if not _insert_submission(session, envelope, now=now, request_id=request_id):
        # A concurrent request stored this id first; answer as a retry would be answered.
        existing = repository.get_submission(session, submission.submission_id)
        assert existing is not None  # the conflicting insert has committed
        return _replay_or_conflict(existing, caller.partner_id, envelope.payload_sha256)
    tally = _store_records(session, submission, decision, settings=settings, lines_safe=envelope.lines_safe)
    receipt, receipt_jws = _sign_receipt(session, envelope, tally, signer=signer, now=now)
    job_id = _enqueue_matching(session, submission, now=now)
    audit_service.record(
        session,
        actor=caller,
        action="submission.stored",
        object_type="submission",
        object_ids=[str(submission.submission_id)],
        purpose=submission.kind.value,
        now=now,
    )
    return IngestOutcome(
        status=SubmissionStatus(
            submission_id=submission.submission_id,
            status="stored",
            received_at=now,
            job_id=job_id,
            receipt=receipt,
            receipt_jws=receipt_jws,
        ),
        created=True,
    )


def _verified_envelope(
    session: Session, *, caller: Caller, body: bytes | bytearray, settings: Settings, now: dt.datetime
) -> _Envelope:
    """Check the signature, then the envelope (no repeated members, the schema, the sender, the size)."""
    # Whitespace around the serialisation (the newline `cme sign > file` leaves) is no part of it.
    body = strip_surrounding_whitespace(body)
    shape_problem = compact_shape_problem(body)
    if shape_problem is not None:
        raise NotCompactJws(
            f"{shape_problem} A submission is sent as one compact JWS (what `cme sign` prints), "
            "Content-Type application/jose."
        )
    # verify_jws reads the body through find/rfind/memoryview/hashlib, which take a bytearray as well.
    signed = cast(bytes, body)
    verified = verify_jws(session, signed, typ=SUBMISSION_TYP, expected_partner=caller.partner_id, now=now)
    _release(body)
    repeated = strict_json.repeated_member(verified.payload, ENVELOPE_MEMBERS)
    if repeated is not None:
        raise InvalidSubmission(
            f"The member {repeated!r} appears more than once; the submission was not stored.",
            errors=[ProblemItem(field=repeated, code="duplicate_member", message="Named more than once.")],
        )
    # Inside the records too (and a name escaped differently the byte scan above cannot see): pydantic
    # would keep the last value, another reader the first.
    duplicate = strict_json.duplicate_member_path(verified.payload)
    if duplicate is not None:
        raise InvalidSubmission(
            "A member is named twice in one object; the submission was not stored.",
            errors=[_duplicate_item(duplicate)],
        )
    payload_sha256 = hashlib.sha256(verified.payload).hexdigest()
    lines_safe = copy_lines_safe(verified.payload) and repository.copy_text_supported(session)
    submission = parse_payload(verified.payload, settings, bulk=lines_safe)
    # Keep the signature evidence, let the decoded payload bytes go: at 500,000 records they are 100 MB.
    verified = dataclasses.replace(verified, payload=b"")
    if submission.sender != caller.partner_id:
        raise SenderMismatch("The payload's sender must be the partner that signed it.")
    if len(submission.records) > settings.max_records:
        raise InvalidSubmission(
            f"A submission may carry at most {settings.max_records} records.",
            errors=[ProblemItem(field="records", code="too_many_records", message="Too many records.")],
        )
    return _Envelope(
        verified=verified,
        submission=submission,
        payload_sha256=payload_sha256,
        record_count=len(submission.records),
        lines_safe=lines_safe,
    )


def _allowed_route(
    session: Session,
    *,
    caller: Caller,
    submission: SubmissionPayload | HealthRegisterBulk,
    settings: Settings,
    now: dt.datetime,
) -> RouteDecision:
    """The route policy's decision for this sender, recipient and kind, and the Regulations' dates; or refused."""
    sender_view = _partner_view(session, caller.partner_id)
    recipient_view = _partner_view(session, submission.recipient) if submission.recipient else None
    if sender_view is None:
        raise NotFound("Unknown sender.")
    if submission.recipient is not None and recipient_view is None:
        raise RouteRefused("The recipient is not a registered partner.")
    decision = decide_route(submission.kind, sender_view, recipient_view)
    if decision.missing_field is not None:
        raise InvalidSubmission(
            f"{decision.reason} Nothing was stored.",
            errors=[ProblemItem(field=decision.missing_field, code="missing", message=decision.reason or "")],
        )
    if not decision.allowed:
        raise RouteRefused(decision.reason)
    # R1.1/R1.2: health bodies share with LAs only under the Regulations, which have an end date; education
    # registers are the LAs' own duty and are not gated.
    received_on = now.astimezone(LONDON).date()
    if isinstance(submission, _HEALTH_LISTS) and not (
        settings.legal_window_start <= received_on <= settings.legal_window_end
    ):
        raise OutsideLegalWindow(
            f"Health lists are accepted from {settings.legal_window_start} to {settings.legal_window_end}"
            f" (UK time); this one was received on {received_on}. Nothing was stored."
        )
    return decision


def _insert_submission(
    session: Session, envelope: _Envelope, *, now: dt.datetime, request_id: str | None
) -> bool:
    """Insert the submission row unless the id is already stored (False: a concurrent request stored it).

    The submission row goes first (the record rows refer to it); its counts and receipt are filled in
    once every record has been assessed, which happens while the rows stream to the database.
    """
    submission, verified = envelope.submission, envelope.verified
    return repository.insert_submission_if_absent(
        session,
        {
            "id": submission.submission_id,
            "sender_id": submission.sender,
            "recipient_id": submission.recipient,
            "kind": submission.kind.value,
            "scope": submission.scope,
            "as_of": submission.as_of,
            "status": "stored",
            "received_at": now,
            "request_id": request_id,
            "payload_sha256": envelope.payload_sha256,
            "jws_sha256": verified.content_sha256,
            "jws_header": verified.header,
            "signer_kid": verified.kid,
            "signer_thumbprint": verified.thumbprint,
            "record_count": envelope.record_count,
            "accepted_count": 0,
            "flagged_count": 0,
            "rejected_count": 0,
            "receipt": {},
            "receipt_jws": "",
        },
    )


def _store_records(
    session: Session,
    submission: SubmissionPayload | HealthRegisterBulk,
    decision: RouteDecision,
    *,
    settings: Settings,
    lines_safe: bool,
) -> _Tally:
    """Assess every record and stream the kept rows to the database; the fates counted as they go.

    The records are consumed: taken out of `submission.records` as their rows are built.
    """
    sid = submission.submission_id
    as_of = submission.as_of
    tally = _Tally()
    if isinstance(submission, HealthRegisterBulk):
        assert submission.recipient is not None  # decide_route requires it
        items = _consumed(submission.records)
        repository.insert_rows(
            session,
            HealthChild,
            HEALTH_COLUMNS,
            _health_item_lines(sid, submission.recipient, items, as_of, tally, _context(settings)),
        )
    elif isinstance(submission, HealthRegisterSubmission):
        assert submission.recipient is not None  # decide_route requires it
        kept = _kept_health(_consumed(submission.records), as_of, tally)
        repository.insert_rows(
            session,
            HealthChild,
            HEALTH_COLUMNS,
            _health_lines(sid, submission.recipient, kept)
            if lines_safe
            else _health_rows(sid, submission.recipient, kept),
        )
    else:
        assert submission.kind in EDUCATION_KINDS and decision.register_la is not None
        repository.insert_rows(
            session,
            EducationChild,
            EDUCATION_COLUMNS,
            _education_rows(
                sid,
                submission.kind,
                decision.register_la,
                _consumed(cast(list[EducationRecord], submission.records)),
                as_of,
                tally,
            ),
        )
    return tally


def _sign_receipt(
    session: Session, envelope: _Envelope, tally: _Tally, *, signer: ServiceSigner, now: dt.datetime
) -> tuple[Receipt, str]:
    """The receipt (counts, the records not plainly accepted, the audit head), signed and kept on the row."""
    submission, verified = envelope.submission, envelope.verified
    counts = tally.counts
    receipt = Receipt(
        submission_id=submission.submission_id,
        kind=submission.kind,
        sender=submission.sender,
        recipient=submission.recipient,
        scope=submission.scope,
        as_of=submission.as_of,
        received_at=now,
        payload_sha256=envelope.payload_sha256,
        jws_sha256=verified.content_sha256,
        signer_kid=verified.kid,
        record_count=envelope.record_count,
        accepted=counts[Fate.accepted],
        flagged=counts[Fate.flagged],
        rejected=counts[Fate.rejected],
        records=tally.reported,
        audit_head=_audit_head(session),
    )
    receipt_json = receipt.model_dump(mode="json")
    receipt_jws = signer.sign(receipt_json, typ=RECEIPT_TYP)
    repository.set_outcome(
        session,
        submission.submission_id,
        accepted=counts[Fate.accepted],
        flagged=counts[Fate.flagged],
        rejected=counts[Fate.rejected],
        receipt=receipt_json,
        receipt_jws=receipt_jws,
    )
    return receipt, receipt_jws


def _enqueue_matching(
    session: Session, submission: SubmissionPayload | HealthRegisterBulk, *, now: dt.datetime
) -> uuid.UUID:
    """Queue the matching this submission calls for (a register first supersedes the sender's previous one
    of its kind and scope); the job's id, also kept on the submission row."""
    sid = submission.submission_id
    if isinstance(submission, _HEALTH_LISTS):
        assert submission.recipient is not None
        job = jobs_service.enqueue(
            session,
            "match_health_list",
            {"submission_id": str(sid)},
            now=now,
            visible_to=[submission.sender, submission.recipient],
        )
    else:
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
    return job.id


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
