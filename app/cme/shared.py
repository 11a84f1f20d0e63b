"""What every CME use case shares: the officer, lookups scoped to the officer's LA, history and audit
events, ETags and pagination.

The use cases live one module each: `candidates`, `records`, `removals`, `rights`, `subject_access`,
`transfers`. Services never commit: the request (or the batch job) owns the transaction, and every audit
event is written in that same transaction so no read or change escapes the log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.audit import service as audit
from app.cme import repository
from app.cme.domain import Cursor, CursorError, Purpose, SubjectType, birth_range_for_year
from app.cme.exceptions import CandidateNotFound, NotAnLaOfficer, RecordNotFound
from app.cme.models import CmeCandidate, CmeEvent, CmeRecord
from app.core.errors import InvalidCursor, PreconditionFailed, PreconditionRequired, ProblemError
from app.partners.models import PartnerKind
from app.security.caller import Caller
from app.security.roles import OfficerRole


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
    access requests in the due list) stays in the use cases."""
    if caller.partner_kind is not PartnerKind.local_authority or caller.officer_role is None:
        # Unreachable through the API (the table admits only LA officers); a caller built by other code.
        raise NotAnLaOfficer("These routes serve local authority case systems acting for a named officer.")
    return Officer(caller=caller, la_id=caller.partner_id, role=caller.officer_role)


def candidate_of(session: Session, officer: Officer, candidate_id: uuid.UUID) -> CmeCandidate:
    """One of the officer's LA's candidates; another LA's id is not found."""
    candidate = repository.get_candidate(session, officer.la_id, candidate_id)
    if candidate is None:
        raise CandidateNotFound()
    return candidate


def record_of(session: Session, officer: Officer, record_id: uuid.UUID) -> CmeRecord:
    """One of the officer's LA's records; another LA's id is not found."""
    record = repository.get_record(session, officer.la_id, record_id)
    if record is None:
        raise RecordNotFound()
    return record


def audit_event(
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


def add_event(
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
    """An entry in a candidate's or record's history: who (an officer, or the service), what, why."""
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


def event_row(
    la_id: str, subject: SubjectType, subject_id: uuid.UUID, action: str, now: dt.datetime
) -> dict[str, Any]:
    """A history event the service itself records (no officer, no reason), as a row for a bulk insert."""
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


def history(
    session: Session, officer: Officer, subject_type: SubjectType, subject_id: uuid.UUID, *, now: dt.datetime
) -> Sequence[CmeEvent]:
    """Every event of one candidate or record, oldest first: who, when, what and why."""
    if subject_type is SubjectType.RECORD:
        record_of(session, officer, subject_id)
    else:
        candidate_of(session, officer, subject_id)
    audit_event(
        session,
        officer.caller,
        f"cme.{subject_type.value}.history",
        [subject_id],
        purpose=Purpose.CASEWORK,
        now=now,
    )
    return repository.events(session, officer.la_id, subject_id)


def flush_versioned(session: Session, conflict: ProblemError) -> None:
    """Flush an UPDATE or DELETE guarded by the row version; a concurrent writer who got there first wins."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise conflict from exc


def etag(record: CmeRecord) -> str:
    return f'"{record.version}"'


def check_if_match(record: CmeRecord, if_match: str | None) -> None:
    if if_match is None:
        raise PreconditionRequired("Send If-Match with the ETag of the record you read.")
    # "*" would skip the lost-update check this header exists for, so only a real ETag counts.
    if etag(record) not in (tag.strip() for tag in if_match.split(",")):
        raise PreconditionFailed("The record has changed since it was read; read it again.")


def district(value: str | None) -> str | None:
    """A postcode district filter as stored (upper case)."""
    return value.upper() if value else None


def born_between(year_group: int | None, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """The birth dates of a year group filter in the current school year."""
    return birth_range_for_year(year_group, today) if year_group is not None else None


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Any]
    next_cursor: str | None


def page_request(officer: Officer, *, sort: str, limit: int, cursor: str | None) -> repository.PageRequest:
    """A page of one of the officer's lists; a cursor issued for another LA or order is refused (400)."""
    after = None
    if cursor is not None:
        try:
            after = Cursor.decode(cursor, la_id=officer.la_id, sort=sort)
        except CursorError as exc:
            raise InvalidCursor("The cursor was not issued for this list.") from exc
    return repository.PageRequest(sort=sort, limit=limit, after=after)


def paginate(rows: Sequence[Any], officer: Officer, page: repository.PageRequest, key_attr: str) -> Page:
    """The page's rows (the query read one more) and the cursor after the last one, if there is more."""
    if len(rows) <= page.limit:
        return Page(rows=rows, next_cursor=None)
    last = rows[page.limit - 1]
    key: dt.datetime = getattr(last, key_attr)
    cursor = Cursor(la_id=officer.la_id, sort=page.sort, key=key, id=last.id)
    return Page(rows=rows[: page.limit], next_cursor=cursor.encode())
