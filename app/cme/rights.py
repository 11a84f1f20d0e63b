"""Data subject rights on a CME record: restriction (UK GDPR art. 18), the subject access export (art. 15)
and erasure (art. 17). Subject access requests and their clock are in `subject_access_requests.py`; an
undecided candidate is erased in `candidates.py`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.cme import repository
from app.cme.domain import Purpose, TransferStatus
from app.cme.models import CmeEvent, CmeRecord, CmeRecordStub
from app.cme.removal import ERASURE
from app.cme.removals import RemovalEventDuties, replace_with_stub, with_duties
from app.cme.schemas import Erasure, RestrictionChange
from app.cme.shared import Officer, add_event, audit_event, check_if_match, flush_versioned, record_of
from app.core.errors import PreconditionFailed


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
    record = record_of(session, officer, record_id)
    check_if_match(record, if_match)
    record.restricted = change.restricted
    action = "restricted" if change.restricted else "restriction_lifted"
    add_event(session, la_id=officer.la_id, subject=record, action=action, now=now, officer=officer,
              reason=change.reason)  # fmt: skip
    flush_versioned(session, PreconditionFailed("The record changed while its restriction was being set."))
    audit_event(session, officer.caller, "cme.record.restrict", [record.id], Purpose.DATA_SUBJECT_RIGHTS, now)
    return record


@dataclass(frozen=True, slots=True)
class SubjectAccess:
    record: CmeRecord
    history: Sequence[CmeEvent]
    removal_events: Sequence[RemovalEventDuties]
    access_log: Sequence[AuditEvent]


def subject_access(
    session: Session, officer: Officer, record_id: uuid.UUID, *, now: dt.datetime
) -> SubjectAccess:
    """Everything held about the child, with every access to it (its candidate's included); audited itself."""
    record = record_of(session, officer, record_id)
    ids = [str(record.id)] + ([str(record.candidate_id)] if record.candidate_id else [])
    export = SubjectAccess(
        record=record,
        history=repository.events(session, officer.la_id, record.id),
        removal_events=with_duties(session, repository.removal_events(session, record.id)),
        access_log=audit.events_naming(session, ids),
    )
    audit_event(
        session, officer.caller, "cme.record.subject_access", [record.id], Purpose.DATA_SUBJECT_RIGHTS, now
    )
    return export


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
    record = record_of(session, officer, record_id)
    check_if_match(record, if_match)
    for transfer in repository.transfers_from(session, record.id):
        if transfer.status == TransferStatus.PENDING:
            transfer.status = TransferStatus.ERASED
        transfer.snapshot = None
        transfer.package_sha256 = None
    stub = replace_with_stub(
        session, officer, record, ground=ERASURE, regulation=None, became_aware_on=erasure.received_on,
        remove_due_on=None, reason=erasure.reason, now=now,
    )  # fmt: skip
    audit_event(session, officer.caller, "cme.record.erase", [record_id], Purpose.DATA_SUBJECT_RIGHTS, now)
    return stub
