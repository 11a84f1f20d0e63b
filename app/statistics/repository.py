"""Counting queries over non-identifying data only: submission counts, match outcomes, CME stubs, events,
duties and transfers. No query reads a name, date of birth or address column.

Every query counts what happened within a `Window` of days, each event dated by when the service recorded
it (received, matched, opened, created, removed, sent, decided), so a month that has ended keeps its
figures. Deadlines are the exception, dated by their legal due day: a miss happens when that day ends.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, func, or_, select
from sqlalchemy.orm import Session

from app.cme.domain import CandidateStatus, TransferStatus
from app.cme.models import CmeCandidate, CmeDuty, CmeRecord, CmeRecordStub, CmeTransfer
from app.matching.models import MatchOutcome
from app.statistics.periods import Window
from app.submissions.models import Submission
from app.submissions.schemas import SubmissionKind

ByLa = dict[str, int]


def _within(at: SQLColumnExpression[dt.datetime | None], window: Window) -> ColumnElement[bool]:
    """A timestamp inside the window's days."""
    before_end = at < window.end
    return before_end if window.start is None else and_(at >= window.start, before_end)


def _due_within(due_on: SQLColumnExpression[dt.date | None], window: Window) -> ColumnElement[bool]:
    """A due day inside the window (a clock due on the last day is missed once that day has ended)."""
    on_or_before = due_on <= window.last
    return on_or_before if window.first is None else and_(due_on >= window.first, on_or_before)


def _by_la(session: Session, stmt: Select[Any, Any]) -> ByLa:
    return {str(la): int(count) for la, count in session.execute(stmt).all()}


def _sum(first: ByLa, second: ByLa) -> ByLa:
    return {la: first.get(la, 0) + second.get(la, 0) for la in first.keys() | second.keys()}


def children_received(session: Session, window: Window) -> ByLa:
    """Health-list rows stored for matching, by the pilot LA they were sent to."""
    return _by_la(
        session,
        select(Submission.recipient_id, func.sum(Submission.accepted_count + Submission.flagged_count))
        .where(
            Submission.kind == SubmissionKind.health_register,
            Submission.recipient_id.is_not(None),
            _within(Submission.received_at, window),
        )
        .group_by(Submission.recipient_id),
    )


def matched_by_register(session: Session, window: Window) -> dict[str, ByLa]:
    """Health-list children found on a register (automatically, or confirmed on review), by register type.

    A child counts from when it became matched: the match run, or the review that confirmed it.
    """
    matched_at = func.coalesce(MatchOutcome.reviewed_at, MatchOutcome.created_at)
    rows = session.execute(
        select(MatchOutcome.register, MatchOutcome.recipient_la, func.count())
        .where(
            MatchOutcome.register.is_not(None),
            or_(MatchOutcome.outcome == "matched", MatchOutcome.review_status == "confirmed"),
            _within(matched_at, window),
        )
        .group_by(MatchOutcome.register, MatchOutcome.recipient_la)
    ).all()
    result: dict[str, ByLa] = defaultdict(dict)
    for register, la, count in rows:
        result[str(register)][la] = int(count)
    return result


def candidates(session: Session, window: Window) -> ByLa:
    return _by_la(
        session,
        select(CmeCandidate.la_id, func.count())
        .where(_within(CmeCandidate.opened_at, window))
        .group_by(CmeCandidate.la_id),
    )


def records_created(session: Session, window: Window) -> ByLa:
    """Records held now plus records since removed (their stubs), by when they were created."""
    held = _by_la(
        session,
        select(CmeRecord.la_id, func.count())
        .where(_within(CmeRecord.created_at, window))
        .group_by(CmeRecord.la_id),
    )
    removed = _by_la(
        session,
        select(CmeRecordStub.la_id, func.count())
        .where(_within(CmeRecordStub.created_at, window))
        .group_by(CmeRecordStub.la_id),
    )
    return _sum(held, removed)


def removals_by_ground(session: Session, window: Window) -> dict[str, ByLa]:
    result: dict[str, ByLa] = defaultdict(dict)
    stmt = (
        select(CmeRecordStub.ground, CmeRecordStub.la_id, func.count())
        .where(_within(CmeRecordStub.removed_at, window))
        .group_by(CmeRecordStub.ground, CmeRecordStub.la_id)
    )
    for ground, la, count in session.execute(stmt).all():
        result[str(ground)][la] = int(count)
    return result


def transfers_sent(session: Session, window: Window) -> ByLa:
    return _by_la(
        session,
        select(CmeTransfer.from_la, func.count())
        .where(_within(CmeTransfer.created_at, window))
        .group_by(CmeTransfer.from_la),
    )


def transfers_received(session: Session, window: Window) -> ByLa:
    """Transfers sent to a pilot LA through the service (signed packages for other LAs are not counted)."""
    return _by_la(
        session,
        select(CmeTransfer.to_la, func.count())
        .where(CmeTransfer.status != TransferStatus.PACKAGE_ISSUED, _within(CmeTransfer.created_at, window))
        .group_by(CmeTransfer.to_la),
    )


def deadlines_met(session: Session, window: Window) -> ByLa:
    """Records removed in the window on or before their removal due date."""
    return _by_la(
        session,
        select(CmeRecordStub.la_id, func.count())
        .where(
            CmeRecordStub.remove_due_on.is_not(None),
            func.date(CmeRecordStub.removed_at) <= CmeRecordStub.remove_due_on,
            _within(CmeRecordStub.removed_at, window),
        )
        .group_by(CmeRecordStub.la_id),
    )


def deadlines_missed(session: Session, window: Window) -> ByLa:
    """Deadlines due in the window and not met by their due day: records removed late (whenever, even after
    the window: at its end they were clocks running past due), plus clocks still running now.
    """
    late = _by_la(
        session,
        select(CmeRecordStub.la_id, func.count())
        .where(
            CmeRecordStub.remove_due_on.is_not(None),
            func.date(CmeRecordStub.removed_at) > CmeRecordStub.remove_due_on,
            _due_within(CmeRecordStub.remove_due_on, window),
        )
        .group_by(CmeRecordStub.la_id),
    )
    running = _by_la(
        session,
        select(CmeDuty.la_id, func.count())
        .where(_due_within(CmeDuty.due_on, window))
        .group_by(CmeDuty.la_id),
    )
    return _sum(late, running)


def days_to_resolution(session: Session, window: Window) -> dict[str, list[float]]:
    """Days from opening to decision of every candidate decided in the window, by LA."""
    rows = session.execute(
        select(CmeCandidate.la_id, CmeCandidate.opened_at, CmeCandidate.closed_at).where(
            CmeCandidate.status != CandidateStatus.OPEN,
            CmeCandidate.closed_at.is_not(None),
            _within(CmeCandidate.closed_at, window),
        )
    ).all()
    result: dict[str, list[float]] = defaultdict(list)
    for la, opened_at, closed_at in rows:
        assert closed_at is not None  # the query selects on it
        result[la].append((closed_at - opened_at).total_seconds() / 86_400)
    return result
