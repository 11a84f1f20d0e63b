"""Use cases of the CME database: candidates, inclusion decisions, records, corrections, removal clocks.

Services never commit: the request (or the batch job) owns the transaction, and every audit event is
written in that same transaction so no read or change escapes the log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cme import repository
from app.cme.clocks import SUBJECT_ACCESS_EXTENDED_MONTHS, ClockSettings, subject_access_due
from app.cme.csa import CsaStatus, csa_status
from app.cme.domain import (
    SUBJECT_ACCESS_ROLES,
    CandidateInput,
    CandidateStatus,
    Cursor,
    CursorError,
    Purpose,
    RecordStatus,
    Resolution,
    SubjectType,
    TransferStatus,
    editable_fields_denied,
    identity_key,
    postcode_district,
)
from app.cme.exceptions import (
    CandidateClosed,
    CandidateNotFound,
    ExtensionNotAllowed,
    ImpossibleDate,
    NotAnLaOfficer,
    NotCompulsorySchoolAge,
    RecordNotFound,
    RemovalNotReady,
    RoleNotAllowed,
    SubjectAccessRequestAnswered,
    SubjectAccessRequestNotFound,
    TransferNotAllowed,
    TransferNotFound,
)
from app.cme.models import (
    CmeCandidate,
    CmeDuty,
    CmeEvent,
    CmeRecord,
    CmeRecordStub,
    CmeRemovalEvent,
    CmeSubjectAccessRequest,
    CmeTransfer,
)
from app.cme.removal import ERASURE, RemovalAction, RemovalGround, csa_removal_date, removal_due
from app.cme.schemas import (
    ConfirmCandidate,
    Erasure,
    RecordPatch,
    RemovalEventCreate,
    RestrictionChange,
    SubjectAccessAnswer,
    SubjectAccessExtension,
    SubjectAccessRequestCreate,
)
from app.core.errors import InvalidCursor, PreconditionFailed, PreconditionRequired, ProblemError, ProblemItem
from app.partners.models import PartnerKind
from app.partners.repository import PartnerRepository
from app.security.dependencies import Caller
from app.security.roles import OfficerRole
from app.security.service_key import ServiceSigner

# Fields that hold personal data on candidates and records; cleared when a candidate closes.
CHILD_FIELDS = (
    "given_name",
    "middle_names",
    "family_name",
    "former_names",
    "date_of_birth",
    "address_lines",
    "town",
    "postcode",
    "postcode_district",
    "address_is_last_known",
    "identity_key",
)
_ADDRESS_COLUMNS = ("address_lines", "town", "postcode", "postcode_district", "address_is_last_known")
# Schedule 2 fields a health row can provide, by provenance name.
_SUBMITTED_FIELDS = {
    "given_name": ("given_name",),
    "middle_names": ("middle_names",),
    "family_name": ("family_name",),
    "former_names": ("former_names",),
    "date_of_birth": ("date_of_birth",),
    "address": ("address_lines", "town", "postcode"),
}


@dataclass(frozen=True, slots=True)
class Officer:
    """An authenticated LA officer: the tenant (LA) comes from the credential only, never from the request."""

    caller: Caller
    la_id: str
    role: OfficerRole


def officer_from(caller: Caller) -> Officer:
    """The caller as an LA officer. Which officer roles may use which CME operation is decided in one place,
    the authorisation table (`app.security.authorization.RULES`, applied by `CallerDep` before any CME
    route runs; tests/security/test_authorization_matrix.py walks it); the services do not check it again.
    What a role may *see* or *change* within an operation (hidden fields, correctable fields, the subject
    access requests in the due list) stays here."""
    if caller.partner_kind is not PartnerKind.local_authority or caller.officer_role is None:
        # Unreachable through the API (the table admits only LA officers); a caller built by other code.
        raise NotAnLaOfficer("These routes serve local authority case systems acting for a named officer.")
    return Officer(caller=caller, la_id=caller.partner_id, role=caller.officer_role)


def _audit(
    session: Session,
    actor: Caller | None,
    action: str,
    object_ids: Sequence[object],
    purpose: Purpose,
    now: dt.datetime,
) -> None:
    """Audit event of a CME action; its object type comes from the action (cme.record.read: cme_record)."""
    audit.record(
        session,
        actor=actor,
        action=action,
        object_type="cme_" + action.split(".")[1],
        object_ids=[str(object_id) for object_id in object_ids],
        purpose=purpose,
        now=now,
    )


def _flush_versioned(session: Session, conflict: ProblemError) -> None:
    """Flush an UPDATE or DELETE guarded by the row version; a concurrent writer who got there first wins."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise conflict from exc


def _event(
    session: Session,
    *,
    la_id: str,
    subject: CmeCandidate | CmeRecord,
    action: str,
    now: dt.datetime,
    officer: Officer | None,
    reason: str | None = None,
    fields: Sequence[str] = (),
) -> None:
    session.add(
        CmeEvent(
            la_id=la_id,
            subject_type=SubjectType.CANDIDATE if isinstance(subject, CmeCandidate) else SubjectType.RECORD,
            subject_id=subject.id,
            at=now,
            officer_id=officer.caller.officer_id if officer else None,
            role=officer.role.value if officer else None,
            action=action,
            reason=reason,
            fields=list(fields),
        )
    )


# --- Candidates (reg 3) -------------------------------------------------------------------------------


def open_candidates(
    session: Session,
    *,
    la_id: str,
    submission_ids: Sequence[uuid.UUID],
    children: Sequence[CandidateInput],
    now: dt.datetime,
    step: Callable[[], None] | None = None,
    step_rows: int = 1000,
) -> list[uuid.UUID]:
    """Put unmatched health-list children in the LA's work queue; one id per input, in order.

    `submission_ids[i]` is the list `children[i]` came from. A child already known to this LA (an open
    candidate or a CME record, found by `link_id` or by exact normalised names plus date of birth) is
    linked to it, and that id is returned, instead of opening a second candidate; two children of one
    batch with one key share one new candidate. Running the same health rows again returns the same ids.
    Set-based: a few queries and one statement per table for the whole batch, however large. With `step`,
    new candidates are written in parts of `step_rows`, each with its history and audit event, and `step`
    is called after each part (a matching round on SQLite commits there).
    """
    earlier = repository.candidates_from(session, la_id, sorted(set(submission_ids)))
    keys = [identity_key(c.given_name, c.family_name, c.date_of_birth) for c in children]
    known = repository.known_children(
        session,
        la_id,
        ids=[c.link_id for c in children if c.link_id is not None],
        keys=sorted({key for key in keys if key is not None}),
    )
    new: dict[uuid.UUID, dict[str, Any]] = {}
    new_by_key: dict[str, uuid.UUID] = {}
    sightings: dict[uuid.UUID, int] = {}
    events: list[dict[str, Any]] = []
    linked: list[uuid.UUID] = []
    result: list[uuid.UUID] = []
    for submission_id, child, key in zip(submission_ids, children, keys, strict=True):
        if child.health_child_id is not None and (submission_id, child.health_child_id) in earlier:
            result.append(earlier[(submission_id, child.health_child_id)])
            continue
        existing, subject = _known_child(known, new_by_key, child.link_id, key)
        if existing is None:
            candidate_id = uuid.uuid4()
            new[candidate_id] = _candidate_row(candidate_id, la_id, submission_id, child, key, now)
            if key is not None:
                new_by_key[key] = candidate_id
            result.append(candidate_id)
            continue
        if subject is SubjectType.CANDIDATE:
            sightings[existing] = sightings.get(existing, 0) + 1
        events.append(_event_row(la_id, subject, existing, "sighted", now))
        linked.append(existing)
        result.append(existing)
    rows = list(new.values())
    size = step_rows if step else max(len(rows), 1)
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        ids = [row["id"] for row in part]
        repository.insert_candidates(session, part)
        repository.insert_events(
            session, [_event_row(la_id, SubjectType.CANDIDATE, i, "opened", now) for i in ids]
        )
        _audit(session, None, "cme.candidate.open", ids, Purpose.IDENTIFY, now)
        if step:
            step()
    # Sightings last: a part written before a crash is found again by the retry, which then counts
    # the sightings once.
    repository.add_sightings(session, sightings)
    repository.insert_events(session, events)
    if linked:
        _audit(session, None, "cme.candidate.link", linked, Purpose.IDENTIFY, now)
    return result


def _known_child(
    known: repository.KnownChildren,
    new_by_key: dict[str, uuid.UUID],
    link_id: uuid.UUID | None,
    key: str | None,
) -> tuple[uuid.UUID | None, SubjectType]:
    """The open candidate or record this child already is: by link id, then by key (an open candidate
    before a record, then one opened earlier in this batch)."""
    if link_id is not None:
        if link_id in known.candidate_ids:
            return link_id, SubjectType.CANDIDATE
        if link_id in known.record_ids:
            return link_id, SubjectType.RECORD
    if key is not None:
        if key in known.candidate_by_key:
            return known.candidate_by_key[key], SubjectType.CANDIDATE
        if key in known.record_by_key:
            return known.record_by_key[key], SubjectType.RECORD
        if key in new_by_key:
            return new_by_key[key], SubjectType.CANDIDATE
    return None, SubjectType.CANDIDATE


def _candidate_row(
    candidate_id: uuid.UUID,
    la_id: str,
    submission_id: uuid.UUID,
    child: CandidateInput,
    key: str | None,
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": candidate_id,
        "la_id": la_id,
        "status": CandidateStatus.OPEN.value,
        "opened_at": now,
        "submission_id": submission_id,
        "match_run_id": child.match_run_id,
        "health_child_id": child.health_child_id,
        "sightings": 1,
        "given_name": child.given_name,
        "middle_names": child.middle_names,
        "family_name": child.family_name,
        "former_names": [dict(name) for name in child.former_names],
        "date_of_birth": child.date_of_birth,
        "address_lines": list(child.address_lines),
        "town": child.town,
        "postcode": child.postcode,
        "postcode_district": postcode_district(child.postcode),
        "address_is_last_known": child.address_is_last_known,
        "identity_key": key,
        "closed_at": None,
        "closed_by": None,
        "outcome": None,
        "record_id": None,
        "version": 1,
    }


def _event_row(
    la_id: str, subject: SubjectType, subject_id: uuid.UUID, action: str, now: dt.datetime
) -> dict[str, Any]:
    """A history event the service itself records (no officer, no reason)."""
    return {
        "la_id": la_id,
        "subject_type": subject.value,
        "subject_id": subject_id,
        "at": now,
        "officer_id": None,
        "role": None,
        "action": action,
        "reason": None,
        "fields": [],
    }


def _cursor(token: str | None, officer: Officer, sort: str) -> Cursor | None:
    if token is None:
        return None
    try:
        return Cursor.decode(token, la_id=officer.la_id, sort=sort)
    except CursorError as exc:
        raise InvalidCursor("The cursor was not issued for this list.") from exc


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Any]
    next_cursor: str | None


def _paginate(rows: Sequence[Any], officer: Officer, page: repository.PageRequest, key_attr: str) -> Page:
    if len(rows) <= page.limit:
        return Page(rows=rows, next_cursor=None)
    last = rows[page.limit - 1]
    key: dt.datetime = getattr(last, key_attr)
    cursor = Cursor(la_id=officer.la_id, sort=page.sort, key=key, id=last.id)
    return Page(rows=rows[: page.limit], next_cursor=cursor.encode())


def list_candidates(
    session: Session,
    officer: Officer,
    *,
    where: repository.CandidateFilter,
    sort: str,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> Page:
    page = repository.PageRequest(sort=sort, limit=limit, after=_cursor(cursor, officer, sort))
    result = _paginate(
        repository.list_candidates(session, officer.la_id, where, page), officer, page, "opened_at"
    )
    _audit(
        session, officer.caller, "cme.candidate.list", [row.id for row in result.rows], Purpose.IDENTIFY, now
    )
    return result


def _candidate(session: Session, officer: Officer, candidate_id: uuid.UUID) -> CmeCandidate:
    candidate = repository.get_candidate(session, officer.la_id, candidate_id)
    if candidate is None:
        raise CandidateNotFound()
    return candidate


def read_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, *, now: dt.datetime
) -> CmeCandidate:
    candidate = _candidate(session, officer, candidate_id)
    _audit(session, officer.caller, "cme.candidate.read", [candidate.id], Purpose.IDENTIFY, now)
    return candidate


def _close(candidate: CmeCandidate, officer: Officer, outcome: str, now: dt.datetime) -> None:
    """Decided: keep a stub (ids, outcome, who, when) and delete the child's data (minimisation, R3.5)."""
    candidate.status = CandidateStatus.CONFIRMED if outcome == "confirmed" else CandidateStatus.RESOLVED
    candidate.outcome = outcome
    candidate.closed_at = now
    candidate.closed_by = officer.caller.officer_id
    candidate.health_child_id = None
    for name in CHILD_FIELDS:
        setattr(candidate, name, None)


def _open_candidate(session: Session, officer: Officer, candidate_id: uuid.UUID) -> CmeCandidate:
    candidate = _candidate(session, officer, candidate_id)
    if candidate.status != CandidateStatus.OPEN:
        raise CandidateClosed()
    return candidate


def _include(
    session: Session,
    officer: Officer,
    decision: ConfirmCandidate,
    now: dt.datetime,
    *,
    values: dict[str, Any],
    provenance: dict[str, Any],
    candidate_id: uuid.UUID | None = None,
) -> CmeRecord:
    """A new record in the officer's LA, its reg 3 decision the first entry of its history (R3.4).

    Only a child of compulsory school age today may be included (reg 2 "child"): a record of a younger
    child, or of one past the age, would hold personal data the database has no basis for. Where the date
    of birth is unknown the officer's reg 3 decision stands alone."""
    dob: dt.date | None = values.get("date_of_birth")
    if dob is not None and (status := csa_status(dob, now.date())) is not CsaStatus.WITHIN:
        raise NotCompulsorySchoolAge(
            f"The child is {status.value} compulsory school age today; resolve the candidate as "
            f"{Resolution.NOT_COMPULSORY_SCHOOL_AGE.value} instead."
        )
    record = CmeRecord(
        id=uuid.uuid4(),
        la_id=officer.la_id,
        status=RecordStatus.ACTIVE,
        created_at=now,
        created_by=officer.caller.officer_id,
        candidate_id=candidate_id,
        sensitive=False,
        suspected_inaccurate=False,
        restricted=False,
        parents=[],
        education_providers=[],
        provenance=provenance,
        csa_removal_on=csa_removal_date(dob) if dob else None,
    )
    for name, value in values.items():
        setattr(record, name, value)
    session.add(record)
    _event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="included",
        now=now,
        officer=officer,
        reason=decision.basis,
        fields=["reg3(a)", "reg3(b)", "reg3(c)"],
    )
    return record


def confirm_candidate(
    session: Session,
    officer: Officer,
    candidate_id: uuid.UUID,
    decision: ConfirmCandidate,
    *,
    now: dt.datetime,
) -> CmeRecord:
    """Reg 3(a)(b)(c) confirmed: a CME record takes the candidate's data; decision logged (R3.2, R3.4)."""
    candidate = _open_candidate(session, officer, candidate_id)
    provenance = {
        name: {
            "source": "submission",
            "submission_id": str(candidate.submission_id),
            "at": candidate.opened_at.isoformat(),
        }
        for name, columns in _SUBMITTED_FIELDS.items()
        if any(getattr(candidate, column) not in (None, [], "") for column in columns)
    }
    record = _include(
        session,
        officer,
        decision,
        now,
        values={name: getattr(candidate, name) for name in CHILD_FIELDS},
        provenance=provenance,
        candidate_id=candidate.id,
    )
    _close(candidate, officer, "confirmed", now)
    candidate.record_id = record.id
    _event(session, la_id=officer.la_id, subject=candidate, action="confirmed", now=now, officer=officer)
    _flush_versioned(session, CandidateClosed())
    _audit(session, officer.caller, "cme.candidate.confirm", [candidate.id, record.id], Purpose.IDENTIFY, now)
    return record


def resolve_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, outcome: Resolution, *, now: dt.datetime
) -> CmeCandidate:
    """No record: one of the reg 3 conditions fails. Only the outcome and who decided remain."""
    candidate = _open_candidate(session, officer, candidate_id)
    _close(candidate, officer, outcome.value, now)
    _event(
        session,
        la_id=officer.la_id,
        subject=candidate,
        action="resolved",
        now=now,
        officer=officer,
        fields=[outcome.value],
    )
    _flush_versioned(session, CandidateClosed())
    _audit(session, officer.caller, "cme.candidate.resolve", [candidate.id], Purpose.IDENTIFY, now)
    return candidate


# --- Records ------------------------------------------------------------------------------------------


def _record(session: Session, officer: Officer, record_id: uuid.UUID) -> CmeRecord:
    record = repository.get_record(session, officer.la_id, record_id)
    if record is None:
        raise RecordNotFound()
    return record


def list_records(
    session: Session,
    officer: Officer,
    *,
    where: repository.RecordFilter,
    sort: str,
    limit: int,
    cursor: str | None,
    now: dt.datetime,
) -> Page:
    page = repository.PageRequest(sort=sort, limit=limit, after=_cursor(cursor, officer, sort))
    result = _paginate(
        repository.list_records(session, officer.la_id, where, page), officer, page, "created_at"
    )
    _audit(session, officer.caller, "cme.record.list", [row.id for row in result.rows], Purpose.CASEWORK, now)
    return result


def read_record(session: Session, officer: Officer, record_id: uuid.UUID, *, now: dt.datetime) -> CmeRecord:
    record = _record(session, officer, record_id)
    _audit(session, officer.caller, "cme.record.read", [record.id], Purpose.CASEWORK, now)
    return record


def history(
    session: Session, officer: Officer, subject_type: SubjectType, subject_id: uuid.UUID, *, now: dt.datetime
) -> Sequence[CmeEvent]:
    """Every event of one candidate or record, oldest first: who, when, what and why."""
    if subject_type is SubjectType.RECORD:
        _record(session, officer, subject_id)
    else:
        _candidate(session, officer, subject_id)
    _audit(
        session,
        officer.caller,
        f"cme.{subject_type.value}.history",
        [subject_id],
        purpose=Purpose.CASEWORK,
        now=now,
    )
    return repository.events(session, officer.la_id, subject_id)


def etag(record: CmeRecord) -> str:
    return f'"{record.version}"'


def _check_if_match(record: CmeRecord, if_match: str | None) -> None:
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of the record you read.")
    # "*" would skip the lost-update check this header exists for, so only a real ETag counts.
    if etag(record) not in (tag.strip() for tag in if_match.split(",")):
        raise PreconditionFailed("The record has changed since it was read; read it again.")


def _address_columns(address: dict[str, Any] | None) -> dict[str, Any]:
    if address is None:
        return dict.fromkeys(_ADDRESS_COLUMNS)
    return {
        "address_lines": list(address.get("lines") or []),
        "town": address.get("town"),
        "postcode": address.get("postcode"),
        "postcode_district": postcode_district(address.get("postcode")),
        "address_is_last_known": bool(address.get("is_last_known")),
    }


def _column_values(name: str, value: Any) -> dict[str, Any]:
    """The columns one patch field writes (`value` already in JSON form)."""
    if name == "address":
        return _address_columns(value)
    if name == "additional_learning_needs":
        value = value or {}
        return {
            "additional_learning_needs": value.get("needs"),
            "additional_learning_provision": value.get("provision"),
        }
    if name in ("former_names", "parents", "education_providers"):
        return {name: value or []}
    if name == "date_of_birth":
        dob = dt.date.fromisoformat(value) if value else None
        return {"date_of_birth": dob, "csa_removal_on": csa_removal_date(dob) if dob else None}
    return {name: value}


_FLAGS = frozenset({"sensitive", "suspected_inaccurate"})


def correct_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    patch: RecordPatch,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> CmeRecord:
    """Reg 5: correct or complete a record. Optimistic concurrency by ETag; provenance per changed field."""
    record = _record(session, officer, record_id)
    _check_if_match(record, if_match)
    changed = sorted(patch.model_fields_set - {"reason"})
    denied = editable_fields_denied(officer.role, sensitive=record.sensitive, requested=changed)
    if denied:
        raise RoleNotAllowed("The officer's role may not change: " + ", ".join(denied) + ".")
    values = patch.model_dump(mode="json", include=set(changed))
    provenance = dict(record.provenance)
    for name in changed:
        if name in _FLAGS:
            # A flag is on or off; null leaves it as it is.
            if values[name] is not None:
                setattr(record, name, values[name])
            continue
        for column, value in _column_values(name, values[name]).items():
            setattr(record, column, value)
        provenance[name] = {
            "source": "officer",
            "officer_id": officer.caller.officer_id,
            "role": officer.role.value,
            "at": now.isoformat(),
        }
    record.provenance = provenance
    record.identity_key = identity_key(record.given_name, record.family_name, record.date_of_birth)
    _event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="corrected",
        now=now,
        officer=officer,
        reason=patch.reason,
        fields=changed,
    )
    _flush_versioned(session, PreconditionFailed("The record changed while it was being corrected."))
    _audit(session, officer.caller, "cme.record.correct", [record.id], Purpose.ACCURACY, now)
    return record


# --- Transfers (reg 6) ---------------------------------------------------------------------------------

TRANSFER_TYP = "cme-transfer+jws"
# Everything a record holds about the child (Sch 2 paras 1-6) and the flag that protects the address.
_SNAPSHOT_FIELDS = (
    *(name for name in CHILD_FIELDS if name not in ("identity_key", "postcode_district")),
    "parents", "education_providers", "additional_learning_needs", "additional_learning_provision", "sensitive",
)  # fmt: skip
# Provenance names of record fields, and the columns that hold each.
_RECORD_FIELDS = {
    **_SUBMITTED_FIELDS,
    "parents": ("parents",),
    "education_providers": ("education_providers",),
    "additional_learning_needs": ("additional_learning_needs", "additional_learning_provision"),
}


def _snapshot(record: CmeRecord) -> dict[str, Any]:
    """The record's data as JSON: what reg 6 tells the receiving LA about."""
    data = {name: getattr(record, name) for name in _SNAPSHOT_FIELDS}
    data["date_of_birth"] = record.date_of_birth.isoformat() if record.date_of_birth else None
    return data


def _present(values: dict[str, Any], columns: Sequence[str]) -> bool:
    return any(values.get(column) not in (None, [], "") for column in columns)


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    transfer: CmeTransfer
    package: str | None


def transfer_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    receiving_la: str,
    *,
    signer: ServiceSigner,
    now: dt.datetime,
) -> TransferOutcome:
    """Reg 6(a): inform the receiving LA of the child's CME record, which stops the 28-day clock.

    A receiving pilot LA gets an incoming transfer to accept or decline in its own database; any other
    Welsh or English LA gets a package signed by this service for the sending LA to pass on.
    """
    record = _record(session, officer, record_id)
    if receiving_la == officer.la_id:
        raise TransferNotAllowed("The receiving LA must be another local authority.")
    event = repository.current_removal_event(session, record.id, RemovalGround.MOVED_TO_ANOTHER_LA)
    if event is None:
        raise TransferNotAllowed("Record the move (removal-events, moved_to_another_la) before transferring.")
    partner = PartnerRepository(session).get(receiving_la)
    to_pilot = partner is not None and partner.kind is PartnerKind.local_authority and partner.is_pilot
    transfer = CmeTransfer(
        id=uuid.uuid4(),
        from_la=officer.la_id,
        to_la=receiving_la,
        record_id=record.id,
        created_at=now,
        created_by=officer.caller.officer_id,
    )
    package = None
    if to_pilot:
        transfer.status = TransferStatus.PENDING
        transfer.snapshot = _snapshot(record)
    else:
        claims = {"transfer_id": str(transfer.id), "from_la": officer.la_id, "to_la": receiving_la,
                  "issued_at": now.isoformat(), "regulation": 6, "record": _snapshot(record)}  # fmt: skip
        package = signer.sign(claims, typ=TRANSFER_TYP)
        transfer.status = TransferStatus.PACKAGE_ISSUED
        transfer.package_sha256 = hashlib.sha256(package.encode("ascii")).hexdigest()
    session.add(transfer)
    event.receiving_la = receiving_la
    repository.delete_duties(
        session, record.id, RemovalGround.MOVED_TO_ANOTHER_LA, RemovalAction.INFORM_RECEIVING_LA
    )
    _event(session, la_id=officer.la_id, subject=record, action="receiving_la_informed", now=now, officer=officer,
           fields=[receiving_la])  # fmt: skip
    session.flush()
    _audit(session, officer.caller, "cme.record.transfer", [record.id, transfer.id], Purpose.REMOVAL, now)
    return TransferOutcome(transfer=transfer, package=package)


def incoming_transfers(session: Session, officer: Officer, *, now: dt.datetime) -> Sequence[CmeTransfer]:
    """Transfers other LAs sent to the officer's LA that it has not decided yet."""
    transfers = repository.pending_transfers_to(session, officer.la_id)
    _audit(session, officer.caller, "cme.transfer.list", [t.id for t in transfers], Purpose.IDENTIFY, now)
    return transfers


def _pending_transfer(session: Session, officer: Officer, transfer_id: uuid.UUID) -> CmeTransfer:
    transfer = repository.get_transfer_to(session, officer.la_id, transfer_id)
    if transfer is None or transfer.snapshot is None:
        raise TransferNotFound()
    return transfer


def _decide(transfer: CmeTransfer, officer: Officer, status: TransferStatus, now: dt.datetime) -> None:
    transfer.status = status
    transfer.decided_at = now
    transfer.decided_by = officer.caller.officer_id
    transfer.snapshot = None  # the data is now the receiving LA's record, or not held at all


def accept_transfer(
    session: Session,
    officer: Officer,
    transfer_id: uuid.UUID,
    decision: ConfirmCandidate,
    *,
    now: dt.datetime,
) -> CmeRecord:
    """The receiving pilot LA includes the child (its own reg 3 decision); the data becomes its record."""
    transfer = _pending_transfer(session, officer, transfer_id)
    values = dict(transfer.snapshot or {})
    dob = values.get("date_of_birth")
    values["date_of_birth"] = dt.date.fromisoformat(dob) if dob else None
    values["postcode_district"] = postcode_district(values.get("postcode"))
    values["identity_key"] = identity_key(
        values.get("given_name"), values.get("family_name"), values["date_of_birth"]
    )
    origin = {"source": "transfer", "transfer_id": str(transfer.id), "from_la": transfer.from_la,
              "at": transfer.created_at.isoformat()}  # fmt: skip
    provenance = {name: origin for name, columns in _RECORD_FIELDS.items() if _present(values, columns)}
    record = _include(session, officer, decision, now, values=values, provenance=provenance)
    _decide(transfer, officer, TransferStatus.ACCEPTED, now)
    transfer.new_record_id = record.id
    _flush_versioned(session, TransferNotFound())
    _audit(session, officer.caller, "cme.transfer.accept", [transfer.id, record.id], Purpose.IDENTIFY, now)
    return record


def decline_transfer(
    session: Session, officer: Officer, transfer_id: uuid.UUID, *, now: dt.datetime
) -> CmeTransfer:
    """The receiving pilot LA does not include the child; the data it was sent is deleted."""
    transfer = _pending_transfer(session, officer, transfer_id)
    _decide(transfer, officer, TransferStatus.DECLINED, now)
    _flush_versioned(session, TransferNotFound())
    _audit(session, officer.caller, "cme.transfer.decline", [transfer.id], Purpose.IDENTIFY, now)
    return transfer


# --- Data subject rights ------------------------------------------------------------------------------


def set_restriction(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    change: RestrictionChange,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> CmeRecord:
    """Restrict processing (stored, never listed) or lift the restriction, with the reason."""
    record = _record(session, officer, record_id)
    _check_if_match(record, if_match)
    record.restricted = change.restricted
    action = "restricted" if change.restricted else "restriction_lifted"
    _event(
        session,
        la_id=officer.la_id,
        subject=record,
        action=action,
        now=now,
        officer=officer,
        reason=change.reason,
    )
    _flush_versioned(session, PreconditionFailed("The record changed while its restriction was being set."))
    _audit(session, officer.caller, "cme.record.restrict", [record.id], Purpose.DATA_SUBJECT_RIGHTS, now)
    return record


@dataclass(frozen=True, slots=True)
class SubjectAccess:
    record: CmeRecord
    history: Sequence[CmeEvent]
    removal_events: Sequence[CmeRemovalEvent]
    access_log: Sequence[AuditEvent]


def subject_access(
    session: Session, officer: Officer, record_id: uuid.UUID, *, now: dt.datetime
) -> SubjectAccess:
    """Everything held about the child, with every access to it (its candidate's included); audited itself."""
    record = _record(session, officer, record_id)
    ids = [str(record.id)] + ([str(record.candidate_id)] if record.candidate_id else [])
    export = SubjectAccess(
        record=record,
        history=repository.events(session, officer.la_id, record.id),
        removal_events=repository.removal_events(session, record.id),
        access_log=audit.events_naming(session, ids),
    )
    _audit(
        session, officer.caller, "cme.record.subject_access", [record.id], Purpose.DATA_SUBJECT_RIGHTS, now
    )
    return export


def record_subject_access_request(
    session: Session, officer: Officer, body: SubjectAccessRequestCreate, *, now: dt.datetime
) -> CmeSubjectAccessRequest:
    """Start the one-month clock of a subject access request about one of the LA's records (UK GDPR art. 15)."""
    record = _record(session, officer, body.record_id)
    deadline = subject_access_due(body.received_on)
    request = CmeSubjectAccessRequest(
        id=uuid.uuid4(),
        la_id=officer.la_id,
        record_id=record.id,
        received_on=body.received_on,
        due_on=deadline.due_on,
        warn_from=deadline.warn_from,
        extended_due_on=subject_access_due(body.received_on, SUBJECT_ACCESS_EXTENDED_MONTHS).due_on,
        recorded_at=now,
        recorded_by=officer.caller.officer_id,
    )
    session.add(request)
    session.flush()
    _audit(session, officer.caller, "cme.subject_access_request.record", [record.id, request.id],
           Purpose.DATA_SUBJECT_RIGHTS, now)  # fmt: skip
    return request


def _subject_access_request(
    session: Session, officer: Officer, request_id: uuid.UUID
) -> CmeSubjectAccessRequest:
    request = repository.get_subject_access_request(session, officer.la_id, request_id)
    if request is None:
        raise SubjectAccessRequestNotFound()
    return request


def get_subject_access_request(
    session: Session, officer: Officer, request_id: uuid.UUID, *, now: dt.datetime
) -> CmeSubjectAccessRequest:
    """One of the LA's subject access requests, for the data protection officer."""
    request = _subject_access_request(session, officer, request_id)
    _audit(session, officer.caller, "cme.subject_access_request.read", [request.record_id, request.id],
           Purpose.DATA_SUBJECT_RIGHTS, now)  # fmt: skip
    return request


def extend_subject_access_request(
    session: Session,
    officer: Officer,
    request_id: uuid.UUID,
    body: SubjectAccessExtension,
    *,
    now: dt.datetime,
) -> CmeSubjectAccessRequest:
    """Two more months for a complex request, or numerous ones (UK GDPR art. 12(3)): allowed once, only
    while the request is open, and only if the requester was told within the first month."""
    request = _subject_access_request(session, officer, request_id)
    if request.answered_on is not None:
        raise SubjectAccessRequestAnswered()
    if request.extended_on is not None:
        raise ExtensionNotAllowed("The request has already been extended; it can be extended once.")
    if body.informed_on < request.received_on:
        raise ImpossibleDate(
            "informed_on is before the request was received.",
            errors=[ProblemItem(field="informed_on", code="before_receipt", message="Before the request.")],
        )
    if body.informed_on > request.due_on:
        raise ExtensionNotAllowed(
            "The requester must be told of an extension within the first month; that deadline has passed."
        )
    extended = subject_access_due(request.received_on, SUBJECT_ACCESS_EXTENDED_MONTHS)
    request.extended_on = body.informed_on
    request.extension_reason = body.reason.value
    request.due_on, request.warn_from = extended.due_on, extended.warn_from
    session.flush()
    _audit(session, officer.caller, "cme.subject_access_request.extend", [request.record_id, request.id],
           Purpose.DATA_SUBJECT_RIGHTS, now)  # fmt: skip
    return request


def answer_subject_access_request(
    session: Session, officer: Officer, request_id: uuid.UUID, body: SubjectAccessAnswer, *, now: dt.datetime
) -> CmeSubjectAccessRequest:
    """The request was answered: its clock stops and it leaves the due list. A late answer is still
    recorded (the date shows it was late); answering twice is refused."""
    request = _subject_access_request(session, officer, request_id)
    if request.answered_on is not None:
        raise SubjectAccessRequestAnswered()
    if body.answered_on < request.received_on:
        raise ImpossibleDate(
            "answered_on is before the request was received.",
            errors=[ProblemItem(field="answered_on", code="before_receipt", message="Before the request.")],
        )
    request.answered_on = body.answered_on
    request.answered_by = officer.caller.officer_id
    session.flush()
    _audit(session, officer.caller, "cme.subject_access_request.answer", [request.record_id, request.id],
           Purpose.DATA_SUBJECT_RIGHTS, now)  # fmt: skip
    return request


def due_subject_access_requests(
    session: Session, officer: Officer, *, before: dt.date, now: dt.datetime
) -> Sequence[CmeSubjectAccessRequest]:
    """The LA's subject access requests due by `before`, for the data protection officer (others: none)."""
    if officer.role not in SUBJECT_ACCESS_ROLES:
        return []
    requests = repository.due_subject_access_requests(session, officer.la_id, before)
    _audit(session, officer.caller, "cme.subject_access_request.due", [r.record_id for r in requests],
           Purpose.DATA_SUBJECT_RIGHTS, now)  # fmt: skip
    return requests


# --- Removal clocks (regs 6-11) -----------------------------------------------------------------------


def _start_clocks(
    session: Session,
    record: CmeRecord,
    *,
    ground: RemovalGround,
    became_aware_on: dt.date,
    left_area_on: dt.date | None,
    receiving_la: str | None,
    evidence: str,
    recorded_by: str | None,
    now: dt.datetime,
    clocks: ClockSettings,
) -> CmeRemovalEvent:
    duties = removal_due(ground, became_aware_on, left_area_on, clocks)
    repository.delete_duties(session, record.id, ground)
    event = CmeRemovalEvent(
        id=uuid.uuid4(),
        record_id=record.id,
        ground=ground,
        became_aware_on=became_aware_on,
        left_area_on=left_area_on,
        receiving_la=receiving_la,
        evidence=evidence,
        recorded_at=now,
        recorded_by=recorded_by,
    )
    session.add(event)
    session.flush()
    session.add_all(
        CmeDuty(
            id=uuid.uuid4(),
            la_id=record.la_id,
            record_id=record.id,
            removal_event_id=event.id,
            ground=duty.ground,
            action=duty.action,
            regulation=duty.regulation,
            confidence=duty.confidence,
            basis=duty.deadline.basis,
            due_on=duty.deadline.due_on,
            warn_from=duty.deadline.warn_from,
        )
        for duty in duties
    )
    if ground is RemovalGround.MOVED_TO_ANOTHER_LA:
        record.status = RecordStatus.TRANSFER_PENDING
    session.flush()
    return event


def add_removal_event(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    body: RemovalEventCreate,
    *,
    now: dt.datetime,
    clocks: ClockSettings,
) -> CmeRemovalEvent:
    """The LA became aware of a removal ground: store the date and evidence, start the legal clocks."""
    record = _record(session, officer, record_id)
    if body.ground is not RemovalGround.MOVED_TO_ANOTHER_LA and (body.left_area_on or body.receiving_la):
        raise RemovalNotReady("left_area_on and receiving_la apply to the moved_to_another_la ground only.")
    event = _start_clocks(
        session,
        record,
        ground=body.ground,
        became_aware_on=body.became_aware_on,
        left_area_on=body.left_area_on,
        receiving_la=body.receiving_la,
        evidence=body.evidence,
        recorded_by=officer.caller.officer_id,
        now=now,
        clocks=clocks,
    )
    _event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="removal_ground",
        now=now,
        officer=officer,
        fields=[body.ground.value],
    )
    _audit(session, officer.caller, "cme.record.removal_event", [record.id, event.id], Purpose.REMOVAL, now)
    return event


def duties_of(session: Session, event: CmeRemovalEvent) -> Sequence[CmeDuty]:
    return repository.duties_of_event(session, event.id)


def due(session: Session, officer: Officer, *, before: dt.date, now: dt.datetime) -> Sequence[CmeDuty]:
    """Every running clock of the LA due on or before `before` (overdue ones included)."""
    duties = repository.due_duties(session, officer.la_id, before)
    _audit(
        session,
        officer.caller,
        "cme.record.due",
        sorted({str(duty.record_id) for duty in duties}),
        Purpose.REMOVAL,
        now,
    )
    return duties


def surface_due(
    session: Session, today: dt.date, *, now: dt.datetime, clocks: ClockSettings = ClockSettings()
) -> list[uuid.UUID]:
    """Daily job (R11.2): start the reg 11 removal clock of every record whose child has left CSA.

    Nobody has to "become aware": the date is computed from the date of birth, so awareness is taken
    as the first day above compulsory school age. Returns the ids of records newly surfaced.
    """
    surfaced: list[uuid.UUID] = []
    for record in repository.records_past_csa(session, today):
        assert record.csa_removal_on is not None  # the query selects on it
        _start_clocks(
            session,
            record,
            ground=RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE,
            became_aware_on=record.csa_removal_on,
            left_area_on=None,
            receiving_la=None,
            evidence="Computed from the date of birth (reg 11).",
            recorded_by=None,
            now=now,
            clocks=clocks,
        )
        _event(
            session,
            la_id=record.la_id,
            subject=record,
            action="removal_ground",
            now=now,
            officer=None,
            fields=[RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE.value],
        )
        surfaced.append(record.id)
    if surfaced:
        _audit(session, None, "cme.record.surface_due", surfaced, Purpose.REMOVAL, now)
    return surfaced


def found_on_register(
    session: Session,
    *,
    la_id: str,
    candidate_ids: Sequence[uuid.UUID],
    record_ids: Sequence[uuid.UUID],
    run_id: uuid.UUID,
    today: dt.date,
    now: dt.datetime,
    clocks: ClockSettings = ClockSettings(),
) -> None:
    """Matching found these children of `la_id` on an education register; officers decide what follows.

    A record gets the registered-pupil removal clock (reg 7, awareness today); an open candidate gets a
    `found_on_register` event in its history. Nothing is removed or resolved automatically: a false match
    must not take a child missing education off the LA's list. Ids of other LAs or closed candidates are
    ignored.
    """
    records: list[uuid.UUID] = []
    candidates: list[uuid.UUID] = []
    for record_id in record_ids:
        record = repository.find_record(session, la_id, record_id=record_id)
        if record is None:
            continue
        _start_clocks(
            session, record, ground=RemovalGround.REGISTERED_PUPIL, became_aware_on=today, left_area_on=None,
            receiving_la=None, evidence=f"Matched to an education register by matching run {run_id}.",
            recorded_by=None, now=now, clocks=clocks,
        )  # fmt: skip
        _event(session, la_id=la_id, subject=record, action="removal_ground", now=now, officer=None,
               fields=[RemovalGround.REGISTERED_PUPIL.value])  # fmt: skip
        records.append(record.id)
    for candidate_id in candidate_ids:
        candidate = repository.find_open_candidate(session, la_id, candidate_id=candidate_id)
        if candidate is None:
            continue
        _event(session, la_id=la_id, subject=candidate, action="found_on_register", now=now, officer=None)
        candidates.append(candidate.id)
    if records:
        _audit(session, None, "cme.record.found_on_register", records, Purpose.REMOVAL, now)
    if candidates:
        _audit(session, None, "cme.candidate.found_on_register", candidates, Purpose.IDENTIFY, now)


def remove_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    ground: RemovalGround,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> CmeRecordStub:
    """Remove (hard delete) a record on a ground the LA has recorded; a non-identifying stub remains."""
    record = _record(session, officer, record_id)
    _check_if_match(record, if_match)
    event = repository.current_removal_event(session, record.id, ground)
    if event is None:
        raise RemovalNotReady("Record the removal ground (removal-events) before removing the record.")
    if ground is RemovalGround.MOVED_TO_ANOTHER_LA and event.left_area_on is None:
        raise RemovalNotReady(
            "Reg 6: the record is removed after the child has left the area (left_area_on)."
        )
    remove_duty = next(
        (duty for duty in duties_of(session, event) if duty.action == RemovalAction.REMOVE_RECORD), None
    )
    stub = _replace_with_stub(
        session, officer, record, ground=ground, regulation=ground.rule.regulation,
        became_aware_on=event.became_aware_on, remove_due_on=remove_duty.due_on if remove_duty else None,
        reason=None, now=now,
    )  # fmt: skip
    _audit(session, officer.caller, "cme.record.remove", [record_id], Purpose.REMOVAL, now)
    return stub


def _replace_with_stub(
    session: Session,
    officer: Officer,
    record: CmeRecord,
    *,
    ground: str,
    regulation: int | None,
    became_aware_on: dt.date,
    remove_due_on: dt.date | None,
    reason: str | None,
    now: dt.datetime,
) -> CmeRecordStub:
    """Hard delete the record with its clocks, evidence and history; the non-identifying stub stays."""
    stub = CmeRecordStub(
        id=record.id,
        la_id=record.la_id,
        created_at=record.created_at,
        removed_at=now,
        removed_by=officer.caller.officer_id,
        ground=ground,
        regulation=regulation,
        became_aware_on=became_aware_on,
        remove_due_on=remove_due_on,
        reason=reason,
    )
    repository.erase_record(session, record, stub)
    _flush_versioned(session, PreconditionFailed("The record changed while it was being removed."))
    return stub


def erase_record(
    session: Session,
    officer: Officer,
    record_id: uuid.UUID,
    erasure: Erasure,
    *,
    if_match: str | None,
    now: dt.datetime,
) -> CmeRecordStub:
    """UK GDPR art. 17, where the DPO decided the law allows it: remove the record as a removal does, and
    also the data of the transfers sent from it (a pending one is withdrawn); the reason stays on the stub.
    """
    record = _record(session, officer, record_id)
    _check_if_match(record, if_match)
    for transfer in repository.transfers_from(session, record.id):
        if transfer.status == TransferStatus.PENDING:
            transfer.status = TransferStatus.ERASED
        transfer.snapshot = None
        transfer.package_sha256 = None
    stub = _replace_with_stub(
        session, officer, record, ground=ERASURE, regulation=None, became_aware_on=erasure.received_on,
        remove_due_on=None, reason=erasure.reason, now=now,
    )  # fmt: skip
    _audit(session, officer.caller, "cme.record.erase", [record_id], Purpose.DATA_SUBJECT_RIGHTS, now)
    return stub


def erase_candidate(
    session: Session, officer: Officer, candidate_id: uuid.UUID, erasure: Erasure, *, now: dt.datetime
) -> CmeCandidate:
    """UK GDPR art. 17 for an undecided candidate: closed as `erased`, its child data deleted as any close."""
    candidate = _candidate(session, officer, candidate_id)
    if candidate.status != CandidateStatus.OPEN:
        raise CandidateClosed()
    _close(candidate, officer, ERASURE, now)
    _event(session, la_id=officer.la_id, subject=candidate, action="erased", now=now, officer=officer,
           reason=erasure.reason, fields=[erasure.received_on.isoformat()])  # fmt: skip
    _flush_versioned(session, CandidateClosed())
    _audit(session, officer.caller, "cme.candidate.erase", [candidate.id], Purpose.DATA_SUBJECT_RIGHTS, now)
    return candidate
