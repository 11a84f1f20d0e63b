"""Counting queries over non-identifying data only: submission counts, match outcomes, CME stubs, events,
duties and transfers. No query reads a name, date of birth or address column.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.cme.domain import CandidateStatus, TransferStatus
from app.cme.models import CmeCandidate, CmeDuty, CmeRecord, CmeRecordStub, CmeTransfer
from app.matching.models import MatchOutcome
from app.submissions.models import Submission
from app.submissions.schemas import SubmissionKind

ByLa = dict[str, int]


def _by_la(session: Session, stmt: Select[Any, Any]) -> ByLa:
    return {str(la): int(count) for la, count in session.execute(stmt).all()}


def children_received(session: Session) -> ByLa:
    """Health-list rows stored for matching, by the pilot LA they were sent to."""
    return _by_la(
        session,
        select(Submission.recipient_id, func.sum(Submission.accepted_count + Submission.flagged_count))
        .where(Submission.kind == SubmissionKind.health_register, Submission.recipient_id.is_not(None))
        .group_by(Submission.recipient_id),
    )


def matched_by_register(session: Session) -> dict[str, ByLa]:
    """Health-list children found on a register (automatically, or confirmed on review), by register type."""
    rows = session.execute(
        select(MatchOutcome.register, MatchOutcome.recipient_la, func.count())
        .where(
            MatchOutcome.register.is_not(None),
            or_(MatchOutcome.outcome == "matched", MatchOutcome.review_status == "confirmed"),
        )
        .group_by(MatchOutcome.register, MatchOutcome.recipient_la)
    ).all()
    result: dict[str, ByLa] = defaultdict(dict)
    for register, la, count in rows:
        result[str(register)][la] = int(count)
    return result


def candidates(session: Session) -> ByLa:
    return _by_la(session, select(CmeCandidate.la_id, func.count()).group_by(CmeCandidate.la_id))


def records_created(session: Session) -> ByLa:
    """Records held now plus records since removed (their stubs)."""
    held = _by_la(session, select(CmeRecord.la_id, func.count()).group_by(CmeRecord.la_id))
    removed = _by_la(session, select(CmeRecordStub.la_id, func.count()).group_by(CmeRecordStub.la_id))
    return {la: held.get(la, 0) + removed.get(la, 0) for la in held.keys() | removed.keys()}


def removals_by_ground(session: Session) -> dict[str, ByLa]:
    result: dict[str, ByLa] = defaultdict(dict)
    stmt = select(CmeRecordStub.ground, CmeRecordStub.la_id, func.count()).group_by(
        CmeRecordStub.ground, CmeRecordStub.la_id
    )
    for ground, la, count in session.execute(stmt).all():
        result[str(ground)][la] = int(count)
    return result


def transfers_sent(session: Session) -> ByLa:
    return _by_la(session, select(CmeTransfer.from_la, func.count()).group_by(CmeTransfer.from_la))


def transfers_received(session: Session) -> ByLa:
    """Transfers sent to a pilot LA through the service (signed packages for other LAs are not counted)."""
    return _by_la(
        session,
        select(CmeTransfer.to_la, func.count())
        .where(CmeTransfer.status != TransferStatus.PACKAGE_ISSUED)
        .group_by(CmeTransfer.to_la),
    )


def removals_on_time(session: Session) -> tuple[ByLa, ByLa]:
    """Removal deadlines of removed records: (met, missed), by LA."""
    removed_on = func.date(CmeRecordStub.removed_at)
    met = _by_la(
        session,
        select(CmeRecordStub.la_id, func.count())
        .where(CmeRecordStub.remove_due_on.is_not(None), removed_on <= CmeRecordStub.remove_due_on)
        .group_by(CmeRecordStub.la_id),
    )
    late = _by_la(
        session,
        select(CmeRecordStub.la_id, func.count())
        .where(CmeRecordStub.remove_due_on.is_not(None), removed_on > CmeRecordStub.remove_due_on)
        .group_by(CmeRecordStub.la_id),
    )
    return met, late


def overdue_duties(session: Session, today: dt.date) -> ByLa:
    """Clocks still running past their due date."""
    return _by_la(
        session,
        select(CmeDuty.la_id, func.count()).where(CmeDuty.due_on < today).group_by(CmeDuty.la_id),
    )


def days_to_resolution(session: Session) -> dict[str, list[float]]:
    """Days from opening to decision of every closed candidate, by LA."""
    rows = session.execute(
        select(CmeCandidate.la_id, CmeCandidate.opened_at, CmeCandidate.closed_at).where(
            CmeCandidate.status != CandidateStatus.OPEN, CmeCandidate.closed_at.is_not(None)
        )
    ).all()
    result: dict[str, list[float]] = defaultdict(list)
    for la, opened_at, closed_at in rows:
        assert closed_at is not None  # the query selects on it
        result[la].append((closed_at - opened_at).total_seconds() / 86_400)
    return result
