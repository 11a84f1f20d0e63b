"""Subject access requests about CME records (UK GDPR art. 15) and their one-month clock: recorded, read,
extended once (art. 12(3)), answered, and listed when due. For the data protection officer."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.cme import repository
from app.cme.clocks import SUBJECT_ACCESS_EXTENDED_MONTHS, subject_access_due
from app.cme.domain import Purpose
from app.cme.exceptions import (
    ExtensionNotAllowed,
    ImpossibleDate,
    SubjectAccessRequestAnswered,
    SubjectAccessRequestNotFound,
)
from app.cme.models import CmeSubjectAccessRequest
from app.cme.schemas import SubjectAccessAnswer, SubjectAccessExtension, SubjectAccessRequestCreate
from app.cme.shared import Officer, audit_event, record_of
from app.core.errors import ProblemItem
from app.security.roles import SUBJECT_ACCESS_ROLES


def _audited(
    session: Session, officer: Officer, request: CmeSubjectAccessRequest, action: str, now: dt.datetime
) -> CmeSubjectAccessRequest:
    """The request, once the officer's `action` on it is in the audit log (its record's id and its own)."""
    ids = [request.record_id, request.id]
    audit_event(
        session, officer.caller, f"cme.subject_access_request.{action}", ids, Purpose.DATA_SUBJECT_RIGHTS, now
    )
    return request


def record_subject_access_request(
    session: Session, officer: Officer, body: SubjectAccessRequestCreate, *, now: dt.datetime
) -> CmeSubjectAccessRequest:
    """Start the one-month clock of a subject access request about one of the LA's records (UK GDPR art. 15)."""
    record = record_of(session, officer, body.record_id)
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
    return _audited(session, officer, request, "record", now)


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
    return _audited(session, officer, request, "read", now)


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
    return _audited(session, officer, request, "extend", now)


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
    return _audited(session, officer, request, "answer", now)


def due_subject_access_requests(
    session: Session, officer: Officer, *, before: dt.date, now: dt.datetime
) -> Sequence[CmeSubjectAccessRequest]:
    """The LA's subject access requests due by `before`, for the data protection officer (others: none)."""
    if officer.role not in SUBJECT_ACCESS_ROLES:
        return []
    requests = repository.due_subject_access_requests(session, officer.la_id, before)
    ids = [request.record_id for request in requests]
    audit_event(
        session, officer.caller, "cme.subject_access_request.due", ids, Purpose.DATA_SUBJECT_RIGHTS, now
    )
    return requests
