"""Removal of CME records (regs 6-11): grounds the LA became aware of, the legal clocks they start, the due
list, the daily reg 11 surfacing, children found on a register, and the removal itself.

What each ground means and which deadlines it starts are pure rules in `removal.py` and `clocks.py`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.cme import repository
from app.cme.clocks import ClockSettings
from app.cme.domain import Purpose, RecordStatus
from app.cme.exceptions import RemovalNotReady
from app.cme.models import CmeDuty, CmeRecord, CmeRecordStub, CmeRemovalEvent
from app.cme.removal import RemovalAction, RemovalGround, removal_due
from app.cme.schemas import RemovalEventCreate
from app.cme.shared import Officer, add_event, audit_event, check_if_match, flush_versioned, record_of
from app.core.errors import PreconditionFailed


@dataclass(frozen=True, slots=True)
class RemovalEventDuties:
    """A removal event with the clocks it has running (none once a newer awareness replaced them)."""

    event: CmeRemovalEvent
    duties: Sequence[CmeDuty]


def with_duties(session: Session, events: Sequence[CmeRemovalEvent]) -> list[RemovalEventDuties]:
    """Each event with its running clocks, soonest first: one query for them all."""
    duties = repository.duties_of_events(session, [event.id for event in events])
    return [
        RemovalEventDuties(event, [duty for duty in duties if duty.removal_event_id == event.id])
        for event in events
    ]


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
) -> RemovalEventDuties:
    """The LA became aware of a removal ground: store the date and evidence, start the legal clocks."""
    record = record_of(session, officer, record_id)
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
    add_event(
        session,
        la_id=officer.la_id,
        subject=record,
        action="removal_ground",
        now=now,
        officer=officer,
        fields=[body.ground.value],
    )
    audit_event(
        session, officer.caller, "cme.record.removal_event", [record.id, event.id], Purpose.REMOVAL, now
    )
    (added,) = with_duties(session, [event])
    return added


def due(session: Session, officer: Officer, *, before: dt.date, now: dt.datetime) -> Sequence[CmeDuty]:
    """Every running clock of the LA due on or before `before` (overdue ones included)."""
    duties = repository.due_duties(session, officer.la_id, before)
    audit_event(
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
        add_event(
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
        audit_event(session, None, "cme.record.surface_due", surfaced, Purpose.REMOVAL, now)
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
        add_event(session, la_id=la_id, subject=record, action="removal_ground", now=now, officer=None,
                  fields=[RemovalGround.REGISTERED_PUPIL.value])  # fmt: skip
        records.append(record.id)
    for candidate_id in candidate_ids:
        candidate = repository.find_open_candidate(session, la_id, candidate_id=candidate_id)
        if candidate is None:
            continue
        add_event(session, la_id=la_id, subject=candidate, action="found_on_register", now=now, officer=None)
        candidates.append(candidate.id)
    if records:
        audit_event(session, None, "cme.record.found_on_register", records, Purpose.REMOVAL, now)
    if candidates:
        audit_event(session, None, "cme.candidate.found_on_register", candidates, Purpose.IDENTIFY, now)


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
    record = record_of(session, officer, record_id)
    check_if_match(record, if_match)
    event = repository.current_removal_event(session, record.id, ground)
    if event is None:
        raise RemovalNotReady("Record the removal ground (removal-events) before removing the record.")
    if ground is RemovalGround.MOVED_TO_ANOTHER_LA and event.left_area_on is None:
        raise RemovalNotReady(
            "Reg 6: the record is removed after the child has left the area (left_area_on)."
        )
    (current,) = with_duties(session, [event])
    remove_duty = next((duty for duty in current.duties if duty.action == RemovalAction.REMOVE_RECORD), None)
    stub = replace_with_stub(
        session, officer, record, ground=ground, regulation=ground.rule.regulation,
        became_aware_on=event.became_aware_on, remove_due_on=remove_duty.due_on if remove_duty else None,
        reason=None, now=now,
    )  # fmt: skip
    audit_event(session, officer.caller, "cme.record.remove", [record_id], Purpose.REMOVAL, now)
    return stub


def replace_with_stub(
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
    flush_versioned(session, PreconditionFailed("The record changed while it was being removed."))
    return stub
