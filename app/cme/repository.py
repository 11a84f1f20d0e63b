"""Every query of the CME tables. Each read of tenant data takes the LA id and filters by it (reg 12)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, and_, bindparam, delete, exists, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, load_only

from app.cme.domain import CandidateStatus, Cursor, RecordStatus, TransferStatus
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
from app.cme.removal import RemovalAction, RemovalGround
from app.core import bulk

Row = TypeVar("Row", CmeCandidate, CmeRecord)
DESCENDING = "-"

# What a list item shows (`views.candidate_read`, `views.record_read`): lists load nothing else. Any other
# attribute raises on access instead of loading row by row, so a view that starts reading one fails tests.
_CHILD_SHOWN = ("given_name", "middle_names", "family_name", "former_names", "date_of_birth",
                "address_lines", "town", "postcode", "address_is_last_known")  # fmt: skip
_CANDIDATE_LISTED = load_only(
    *(getattr(CmeCandidate, name) for name in _CHILD_SHOWN),
    CmeCandidate.status, CmeCandidate.opened_at, CmeCandidate.submission_id, CmeCandidate.sightings,
    CmeCandidate.closed_at, CmeCandidate.outcome, CmeCandidate.record_id,
    raiseload=True,
)  # fmt: skip
_RECORD_LISTED = load_only(
    *(getattr(CmeRecord, name) for name in _CHILD_SHOWN),
    CmeRecord.status, CmeRecord.created_at, CmeRecord.version, CmeRecord.sensitive,
    CmeRecord.suspected_inaccurate, CmeRecord.restricted, CmeRecord.parents, CmeRecord.education_providers,
    CmeRecord.additional_learning_needs, CmeRecord.additional_learning_provision, CmeRecord.provenance,
    CmeRecord.csa_removal_on,
    raiseload=True,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class PageRequest:
    sort: str  # "created" or "-created": oldest or newest first
    limit: int
    after: Cursor | None


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    status: CandidateStatus | None
    postcode_district: str | None
    born_between: tuple[dt.date, dt.date] | None


@dataclass(frozen=True, slots=True)
class RecordFilter:
    status: RecordStatus | None
    due_before: dt.date | None
    postcode_district: str | None
    born_between: tuple[dt.date, dt.date] | None
    sensitive: bool | None
    suspected_inaccurate: bool | None
    # Roles that may not see a sensitive record's address must not find it by district either.
    include_sensitive_in_district: bool


def _keyset(
    stmt: Select[Row],
    sort_column: InstrumentedAttribute[dt.datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    page: PageRequest,
) -> Select[Row]:
    """Order by (sort key, id) and start after the cursor: stable however rows are added or removed."""
    descending = page.sort.startswith(DESCENDING)
    if page.after is not None:
        key = page.after.key
        if descending:
            stmt = stmt.where(or_(sort_column < key, and_(sort_column == key, id_column < page.after.id)))
        else:
            stmt = stmt.where(or_(sort_column > key, and_(sort_column == key, id_column > page.after.id)))
    order = (sort_column.desc(), id_column.desc()) if descending else (sort_column.asc(), id_column.asc())
    # One extra row tells whether there is a next page.
    return stmt.order_by(*order).limit(page.limit + 1)


def get_candidate(session: Session, la_id: str, candidate_id: uuid.UUID) -> CmeCandidate | None:
    return session.scalars(
        select(CmeCandidate).where(CmeCandidate.id == candidate_id, CmeCandidate.la_id == la_id)
    ).one_or_none()


def get_record(session: Session, la_id: str, record_id: uuid.UUID) -> CmeRecord | None:
    return session.scalars(
        select(CmeRecord).where(CmeRecord.id == record_id, CmeRecord.la_id == la_id)
    ).one_or_none()


def find_open_candidate(
    session: Session, la_id: str, *, candidate_id: uuid.UUID | None = None, identity_key: str | None = None
) -> CmeCandidate | None:
    stmt = select(CmeCandidate).where(
        CmeCandidate.la_id == la_id, CmeCandidate.status == CandidateStatus.OPEN
    )
    if candidate_id is not None:
        stmt = stmt.where(CmeCandidate.id == candidate_id)
    elif identity_key is not None:
        stmt = stmt.where(CmeCandidate.identity_key == identity_key)
    else:
        return None
    return session.scalars(stmt.order_by(CmeCandidate.opened_at).limit(1)).first()


def find_record(
    session: Session, la_id: str, *, record_id: uuid.UUID | None = None, identity_key: str | None = None
) -> CmeRecord | None:
    stmt = select(CmeRecord).where(CmeRecord.la_id == la_id)
    if record_id is not None:
        stmt = stmt.where(CmeRecord.id == record_id)
    elif identity_key is not None:
        stmt = stmt.where(CmeRecord.identity_key == identity_key)
    else:
        return None
    return session.scalars(stmt.order_by(CmeRecord.created_at).limit(1)).first()


def candidates_from(
    session: Session, la_id: str, submission_ids: Sequence[uuid.UUID]
) -> dict[tuple[uuid.UUID, int], uuid.UUID]:
    """(submission, health row) -> the candidate (or the record it became) an earlier run of these lists
    already opened: re-runs are idempotent."""
    stmt = select(
        CmeCandidate.submission_id, CmeCandidate.health_child_id, CmeCandidate.id, CmeCandidate.record_id
    ).where(CmeCandidate.la_id == la_id, bulk.one_of(session, CmeCandidate.submission_id, submission_ids))
    return {
        (submission_id, health_child_id): record_id or candidate_id
        for submission_id, health_child_id, candidate_id, record_id in session.execute(stmt)
        if health_child_id is not None
    }


@dataclass(frozen=True, slots=True)
class KnownChildren:
    """Open candidates and records of one LA, by id and by identity key (the earliest one per key)."""

    candidate_ids: frozenset[uuid.UUID]
    record_ids: frozenset[uuid.UUID]
    candidate_by_key: Mapping[str, uuid.UUID]
    record_by_key: Mapping[str, uuid.UUID]


def known_children(
    session: Session, la_id: str, *, ids: Sequence[uuid.UUID], keys: Sequence[str]
) -> KnownChildren:
    """Which of `ids` are this LA's open candidates or records, and which of `keys` they hold: a few
    queries for the whole batch."""
    open_candidates = (CmeCandidate.la_id == la_id) & (CmeCandidate.status == CandidateStatus.OPEN)
    candidate_ids: set[uuid.UUID] = set()
    record_ids: set[uuid.UUID] = set()
    if ids:
        candidate_ids.update(
            session.scalars(
                select(CmeCandidate.id).where(open_candidates, bulk.one_of(session, CmeCandidate.id, ids))
            )
        )
        record_ids.update(
            session.scalars(
                select(CmeRecord.id).where(CmeRecord.la_id == la_id, bulk.one_of(session, CmeRecord.id, ids))
            )
        )
    candidate_by_key: dict[str, uuid.UUID] = {}
    record_by_key: dict[str, uuid.UUID] = {}
    if keys:
        for key, candidate_id in session.execute(
            select(CmeCandidate.identity_key, CmeCandidate.id)
            .where(open_candidates, bulk.one_of(session, CmeCandidate.identity_key, keys))
            .order_by(CmeCandidate.opened_at.desc())
        ):
            if key is not None:
                candidate_by_key[key] = candidate_id  # the earliest opened comes last and stays
        for key, record_id in session.execute(
            select(CmeRecord.identity_key, CmeRecord.id)
            .where(CmeRecord.la_id == la_id, bulk.one_of(session, CmeRecord.identity_key, keys))
            .order_by(CmeRecord.created_at.desc())
        ):
            if key is not None:
                record_by_key[key] = record_id
    return KnownChildren(frozenset(candidate_ids), frozenset(record_ids), candidate_by_key, record_by_key)


def insert_candidates(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    bulk.insert_dicts(session, cast(Table, CmeCandidate.__table__), rows)


def add_sightings(session: Session, sightings: Mapping[uuid.UUID, int]) -> None:
    """Count more sightings of open candidates; each update bumps the row version (its ETag)."""
    if not sightings:
        return
    table = cast(Table, CmeCandidate.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("candidate_id"))
        .values(sightings=table.c.sightings + bindparam("seen"), version=table.c.version + 1)
    )
    session.execute(stmt, [{"candidate_id": i, "seen": n} for i, n in sightings.items()])


def insert_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    bulk.insert_dicts(session, cast(Table, CmeEvent.__table__), rows)


def list_candidates(
    session: Session, la_id: str, where: CandidateFilter, page: PageRequest
) -> Sequence[CmeCandidate]:
    stmt = select(CmeCandidate).options(_CANDIDATE_LISTED).where(CmeCandidate.la_id == la_id)
    if where.status is not None:
        stmt = stmt.where(CmeCandidate.status == where.status)
    if where.postcode_district is not None:
        stmt = stmt.where(CmeCandidate.postcode_district == where.postcode_district)
    if where.born_between is not None:
        stmt = stmt.where(CmeCandidate.date_of_birth.between(*where.born_between))
    return session.scalars(_keyset(stmt, CmeCandidate.opened_at, CmeCandidate.id, page)).all()


def list_records(session: Session, la_id: str, where: RecordFilter, page: PageRequest) -> Sequence[CmeRecord]:
    # Restricted records (data subject right) are stored but never listed.
    stmt = (
        select(CmeRecord)
        .options(_RECORD_LISTED)
        .where(CmeRecord.la_id == la_id, CmeRecord.restricted.is_(False))
    )
    if where.status is not None:
        stmt = stmt.where(CmeRecord.status == where.status)
    if where.postcode_district is not None:
        stmt = stmt.where(CmeRecord.postcode_district == where.postcode_district)
        if not where.include_sensitive_in_district:
            stmt = stmt.where(CmeRecord.sensitive.is_(False))
    if where.born_between is not None:
        stmt = stmt.where(CmeRecord.date_of_birth.between(*where.born_between))
    if where.sensitive is not None:
        stmt = stmt.where(CmeRecord.sensitive.is_(where.sensitive))
    if where.suspected_inaccurate is not None:
        stmt = stmt.where(CmeRecord.suspected_inaccurate.is_(where.suspected_inaccurate))
    if where.due_before is not None:
        open_duty = exists().where(CmeDuty.record_id == CmeRecord.id, CmeDuty.due_on <= where.due_before)
        stmt = stmt.where(or_(CmeRecord.csa_removal_on <= where.due_before, open_duty))
    return session.scalars(_keyset(stmt, CmeRecord.created_at, CmeRecord.id, page)).all()


def events(session: Session, la_id: str, subject_id: uuid.UUID) -> Sequence[CmeEvent]:
    return session.scalars(
        select(CmeEvent)
        .where(CmeEvent.la_id == la_id, CmeEvent.subject_id == subject_id)
        .order_by(CmeEvent.id)
    ).all()


def duties_of_events(session: Session, removal_event_ids: Sequence[uuid.UUID]) -> Sequence[CmeDuty]:
    """The running clocks of these removal events, soonest first."""
    if not removal_event_ids:
        return []
    return session.scalars(
        select(CmeDuty).where(CmeDuty.removal_event_id.in_(removal_event_ids)).order_by(CmeDuty.due_on)
    ).all()


def removal_events(session: Session, record_id: uuid.UUID) -> Sequence[CmeRemovalEvent]:
    return session.scalars(
        select(CmeRemovalEvent)
        .where(CmeRemovalEvent.record_id == record_id)
        .order_by(CmeRemovalEvent.recorded_at)
    ).all()


def due_duties(session: Session, la_id: str, before: dt.date) -> Sequence[CmeDuty]:
    return session.scalars(
        select(CmeDuty)
        .where(CmeDuty.la_id == la_id, CmeDuty.due_on <= before)
        .order_by(CmeDuty.due_on, CmeDuty.id)
    ).all()


def due_subject_access_requests(
    session: Session, la_id: str, before: dt.date
) -> Sequence[CmeSubjectAccessRequest]:
    """Open (unanswered) requests due by `before`."""
    return session.scalars(
        select(CmeSubjectAccessRequest)
        .where(
            CmeSubjectAccessRequest.la_id == la_id,
            CmeSubjectAccessRequest.due_on <= before,
            CmeSubjectAccessRequest.answered_on.is_(None),
        )
        .order_by(CmeSubjectAccessRequest.due_on, CmeSubjectAccessRequest.id)
    ).all()


def get_subject_access_request(
    session: Session, la_id: str, request_id: uuid.UUID
) -> CmeSubjectAccessRequest | None:
    """One of the LA's requests, locked: two officers answering at once must not both succeed."""
    return session.scalars(
        select(CmeSubjectAccessRequest)
        .where(CmeSubjectAccessRequest.la_id == la_id, CmeSubjectAccessRequest.id == request_id)
        .with_for_update()
    ).one_or_none()


def delete_duties(
    session: Session, record_id: uuid.UUID, ground: RemovalGround, action: RemovalAction | None = None
) -> None:
    """Stop clocks: all of a ground's (a newer awareness replaces them), or one action's (it was done)."""
    stmt = delete(CmeDuty).where(CmeDuty.record_id == record_id, CmeDuty.ground == ground)
    if action is not None:
        stmt = stmt.where(CmeDuty.action == action)
    session.execute(stmt)


def current_removal_event(
    session: Session, record_id: uuid.UUID, ground: RemovalGround
) -> CmeRemovalEvent | None:
    """The awareness whose clocks are running for this ground: a newer one deletes the older one's clocks."""
    return session.scalars(
        select(CmeRemovalEvent)
        .join(CmeDuty, CmeDuty.removal_event_id == CmeRemovalEvent.id)
        .where(CmeRemovalEvent.record_id == record_id, CmeRemovalEvent.ground == ground)
        .limit(1)
    ).first()


def records_past_csa(session: Session, today: dt.date) -> Sequence[CmeRecord]:
    """Records of children no longer of compulsory school age whose reg 11 clock has not been started."""
    started = exists().where(
        CmeRemovalEvent.record_id == CmeRecord.id,
        CmeRemovalEvent.ground == RemovalGround.CEASED_COMPULSORY_SCHOOL_AGE,
    )
    return session.scalars(
        select(CmeRecord).where(CmeRecord.csa_removal_on <= today, ~started).order_by(CmeRecord.id)
    ).all()


def erase_record(session: Session, record: CmeRecord, stub: CmeRecordStub) -> None:
    """Hard delete (reg 6/11 "remove"): the record, its clocks, evidence and history; the stub stays.

    The caller flushes, so the version check on the record's DELETE can be turned into a 412.
    """
    session.add(stub)
    session.execute(delete(CmeDuty).where(CmeDuty.record_id == record.id))
    session.execute(delete(CmeRemovalEvent).where(CmeRemovalEvent.record_id == record.id))
    session.execute(delete(CmeEvent).where(CmeEvent.subject_id == record.id))
    session.delete(record)


def transfers_from(session: Session, record_id: uuid.UUID) -> Sequence[CmeTransfer]:
    """Every transfer the sending LA made of this record."""
    return session.scalars(select(CmeTransfer).where(CmeTransfer.record_id == record_id)).all()


def pending_transfers_to(session: Session, la_id: str) -> Sequence[CmeTransfer]:
    return session.scalars(
        select(CmeTransfer)
        .where(CmeTransfer.to_la == la_id, CmeTransfer.status == TransferStatus.PENDING)
        .order_by(CmeTransfer.created_at, CmeTransfer.id)
    ).all()


def get_transfer_to(session: Session, la_id: str, transfer_id: uuid.UUID) -> CmeTransfer | None:
    """A transfer sent to this LA; the sending LA does not see it here (it answers 404)."""
    return session.scalars(
        select(CmeTransfer).where(CmeTransfer.id == transfer_id, CmeTransfer.to_la == la_id)
    ).one_or_none()
