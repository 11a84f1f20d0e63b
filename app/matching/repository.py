"""Every query of the matching integration. Bulk reads are plain Core selects of the needed columns only."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

import polars as pl
from sqlalchemy import CursorResult, Row, Table, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.cme.models import CmeCandidate, CmeRecord
from app.core import bulk
from app.core.config import wales_reference
from app.jobs.models import Job
from app.jobs.service import LEASE, JobStatus
from app.matching.models import (
    MatchIndexGeneration,
    MatchModelVersion,
    MatchOutcome,
    MatchPeriod,
    MatchRun,
)
from app.partners.models import Partner, PartnerKind
from app.submissions.models import EducationChild, HealthChild, Submission

_CHUNK = 10_000
_GENERATION_ROW = 1

# The columns matching reads; everything else (flags, provision, admission date) is never loaded.
_NAME_COLUMNS = (
    "given_name",
    "middle_names",
    "family_name",
    "former_names",
    "date_of_birth",
    "address_lines",
)
HEALTH_MATCH_COLUMNS = (
    "id", "submission_id", "record_index", "recipient_la", *_NAME_COLUMNS, "town", "postcode",
    "nhs_number", "address_is_last_known",
)  # fmt: skip
EDUCATION_MATCH_COLUMNS = (
    "id", "register", "la_id", *_NAME_COLUMNS, "town", "postcode", "nhs_number",
    "preferred_given_name", "preferred_family_name", "sex", "school_number", "school_name",
)  # fmt: skip
CME_MATCH_COLUMNS = ("id", "la_id", *_NAME_COLUMNS, "town", "postcode")


# --- Model versions -----------------------------------------------------------------------------------


def active_model(session: Session) -> MatchModelVersion | None:
    return session.scalars(
        select(MatchModelVersion).where(MatchModelVersion.active.is_(True)).limit(1)
    ).first()


def add_model(
    session: Session,
    *,
    version: str,
    content_hash: str,
    params: dict[str, Any],
    now: dt.datetime,
    active: bool = True,
) -> MatchModelVersion:
    row = MatchModelVersion(
        version=version, content_hash=content_hash, params=params, created_at=now, active=active
    )
    session.add(row)
    session.flush()
    return row


def model_by_hash(session: Session, content_hash: str) -> MatchModelVersion | None:
    return session.scalars(
        select(MatchModelVersion).where(MatchModelVersion.content_hash == content_hash).limit(1)
    ).first()


# Arbitrary but fixed key of the advisory lock that serialises changes of the active model.
_MODEL_LOCK = 7_123_004_019


def lock_models(session: Session) -> None:
    """Serialise changes of the active model (PostgreSQL; SQLite has one writer anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_MODEL_LOCK)))


def make_only_active(session: Session, model_id: int) -> None:
    """One statement: this row active, every other row not."""
    session.execute(
        update(MatchModelVersion)
        .values(active=MatchModelVersion.id == model_id)
        .execution_options(synchronize_session=False)
    )
    for held in list(session.identity_map.values()):
        if isinstance(held, MatchModelVersion):
            session.expire(held, ["active"])


def decided_reviews(session: Session) -> Sequence[Row[Any]]:
    """Every decided review: (recipient LA, review status, evidence, match probability). No personal data."""
    stmt = select(
        MatchOutcome.recipient_la,
        MatchOutcome.review_status,
        MatchOutcome.evidence,
        MatchOutcome.match_probability,
    ).where(MatchOutcome.review_status.in_(("confirmed", "rejected")))
    return session.execute(stmt.order_by(MatchOutcome.created_at, MatchOutcome.id)).all()


def model_of_run(session: Session, run_id: uuid.UUID) -> dict[str, Any] | None:
    """The parameters of the model a run used (by content hash)."""
    stmt = (
        select(MatchModelVersion.params)
        .join(MatchRun, MatchRun.model_hash == MatchModelVersion.content_hash)
        .where(MatchRun.id == run_id)
    )
    params: dict[str, Any] | None = session.scalars(stmt.limit(1)).first()
    return params


# --- Staging and registers ------------------------------------------------------------------------------


def get_submission(session: Session, submission_id: uuid.UUID) -> Submission | None:
    return session.get(Submission, submission_id)


def jobs_of(session: Session, submission_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(submission, its job) for the submissions that have one."""
    stmt = select(Submission.id, Submission.job_id).where(
        Submission.id.in_(submission_ids), Submission.job_id.is_not(None)
    )
    return [(submission_id, job_id) for submission_id, job_id in session.execute(stmt) if job_id is not None]


def set_submissions_status(session: Session, submission_ids: Sequence[uuid.UUID], status: str) -> None:
    session.execute(update(Submission).where(Submission.id.in_(submission_ids)).values(status=status))


def health_table(session: Session, submission_ids: Sequence[uuid.UUID]) -> pl.DataFrame:
    """The staging rows of these lists, as text (`bulk.read_text`), in no particular order."""
    columns = [getattr(HealthChild, name) for name in HEALTH_MATCH_COLUMNS]
    return bulk.read_text(session, select(*columns).where(HealthChild.submission_id.in_(submission_ids)))


def education_table(session: Session) -> pl.DataFrame:
    """Every register row of every LA, as text (`bulk.read_text`), by id."""
    columns = [getattr(EducationChild, name) for name in EDUCATION_MATCH_COLUMNS]
    return bulk.read_text(session, select(*columns).order_by(EducationChild.id))


def register_fingerprint(session: Session) -> str:
    """Changes whenever the registers do: the live register snapshots (a new one replaces the rows of the
    one it supersedes) and the number of register rows."""
    live = session.scalars(
        select(Submission.id)
        .where(Submission.kind != "health_register", Submission.superseded_at.is_(None))
        .order_by(Submission.id)
    ).all()
    rows = session.scalar(select(func.count()).select_from(EducationChild))
    return hashlib.sha256(f"{rows}|{','.join(map(str, live))}".encode()).hexdigest()


def health_row(session: Session, health_child_id: int) -> Row[Any] | None:
    """One staging row, the columns matching reads (`HEALTH_MATCH_COLUMNS`): a review's health row."""
    columns = [getattr(HealthChild, name) for name in HEALTH_MATCH_COLUMNS]
    return session.execute(select(*columns).where(HealthChild.id == health_child_id)).first()


def education_rows(session: Session) -> Sequence[Row[Any]]:
    """Every register row of every LA (children cross LA borders)."""
    columns = [getattr(EducationChild, name) for name in EDUCATION_MATCH_COLUMNS]
    return session.execute(select(*columns).order_by(EducationChild.id)).all()


def education_by_ids(session: Session, ids: Sequence[int]) -> dict[int, EducationChild]:
    if not ids:
        return {}
    return {row.id: row for row in session.scalars(select(EducationChild).where(EducationChild.id.in_(ids)))}


def delete_staging_rows(
    session: Session, *, submission_ids: Sequence[uuid.UUID], keep: Sequence[int]
) -> None:
    """Delete the staging rows of these lists, all but `keep`, in one statement."""
    stmt = delete(HealthChild).where(HealthChild.submission_id.in_(submission_ids))
    if keep:
        stmt = stmt.where(HealthChild.id.not_in(keep))
    session.execute(stmt)


def delete_health_rows(session: Session, ids: Sequence[int]) -> int:
    deleted = 0
    for chunk in _chunks(ids):
        result: CursorResult[Any] = session.execute(delete(HealthChild).where(HealthChild.id.in_(chunk)))  # type: ignore[assignment]
        deleted += result.rowcount
    return deleted


def open_cme_children(session: Session) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
    """Open candidates and CME records (with identifying data): what a register change may resolve."""
    candidate_columns = [getattr(CmeCandidate, name) for name in CME_MATCH_COLUMNS]
    record_columns = [getattr(CmeRecord, name) for name in CME_MATCH_COLUMNS]
    candidates = session.execute(select(*candidate_columns).where(CmeCandidate.status == "open")).all()
    # A restricted record (UK GDPR art. 18) is stored but not used: it is not matched.
    records = session.execute(select(*record_columns).where(CmeRecord.restricted.is_(False))).all()
    return candidates, records


# --- Periods and rounds -------------------------------------------------------------------------------


def _period_bounds(period: str) -> tuple[dt.date, dt.date]:
    first = dt.date.fromisoformat(f"{period}-01")
    return first, (first + dt.timedelta(days=32)).replace(day=1)


def _health_lists_of(period: str) -> Any:
    first, after = _period_bounds(period)
    return select(
        Submission.id, Submission.sender_id, Submission.recipient_id, Submission.as_of, Submission.received_at
    ).where(Submission.kind == "health_register", Submission.as_of >= first, Submission.as_of < after)


def waiting_lists(session: Session, period: str) -> Sequence[Row[Any]]:
    """The period's health lists that no round has matched yet: (id, sender, recipient, as_of, received_at)."""
    finished = select(MatchRun.submission_id).where(MatchRun.status == "succeeded")
    return session.execute(_health_lists_of(period).where(Submission.id.not_in(finished))).all()


def lists_received(session: Session, period: str) -> set[tuple[str, str]]:
    """(sender, recipient) of every health list of the period, matched or not."""
    return {
        (sender, str(recipient)) for _, sender, recipient, _, _ in session.execute(_health_lists_of(period))
    }


def expected_lists(session: Session) -> set[tuple[str, str]]:
    """(health board, LA) for every active pilot LA whose health board is an active partner: the lists a
    period is complete with."""
    board_of = {la["gss_code"]: la["health_board_gss"] for la in wales_reference()["local_authorities"]}
    active = {
        partner_id: (kind, pilot)
        for partner_id, kind, pilot in session.execute(
            select(Partner.id, Partner.kind, Partner.is_pilot).where(Partner.status == "active")
        )
    }
    return {
        (board_of[la], la)
        for la, (kind, pilot) in active.items()
        if kind == PartnerKind.local_authority and pilot and board_of.get(la) in active
    }


def _dialect_insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def claim_period(session: Session, period: str, job_id: uuid.UUID, now: dt.datetime) -> bool:
    """Claim the period's next round for this job, unless another live job holds it."""
    session.execute(
        _dialect_insert(session)(MatchPeriod)
        .values(period=period, rounds=0)
        .on_conflict_do_nothing(index_elements=["period"])
    )
    live = select(Job.id).where(Job.status == JobStatus.running, Job.locked_at >= now - LEASE)
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(MatchPeriod)
        .where(
            MatchPeriod.period == period,
            or_(
                MatchPeriod.round_job_id.is_(None),
                MatchPeriod.round_job_id == job_id,
                MatchPeriod.round_job_id.not_in(live),
            ),
        )
        .values(round_job_id=job_id, round_claimed_at=now)
    )
    return result.rowcount == 1


def lock_period(session: Session, period: str, job_id: uuid.UUID) -> bool:
    """Lock the period row for the round's write; False if this job no longer holds the claim."""
    row = session.get(MatchPeriod, period, with_for_update=True)
    return row is not None and row.round_job_id == job_id


def release_period(session: Session, period: str, job_id: uuid.UUID, *, finished_round: bool) -> None:
    values: dict[str, Any] = {"round_job_id": None, "round_claimed_at": None}
    if finished_round:
        values["rounds"] = MatchPeriod.rounds + 1
    session.execute(
        update(MatchPeriod)
        .where(MatchPeriod.period == period, MatchPeriod.round_job_id == job_id)
        .values(**values)
    )


def taken_in_period(session: Session, period: str) -> set[int]:
    """Education records an earlier round of the period gave to a child (matched, or possible and not
    rejected on review)."""
    lists = select(MatchRun.submission_id).where(MatchRun.period == period)
    stmt = select(MatchOutcome.education_child_id).where(
        MatchOutcome.submission_id.in_(lists),
        MatchOutcome.outcome.in_(("matched", "possible")),
        or_(MatchOutcome.review_status.is_(None), MatchOutcome.review_status != "rejected"),
    )
    return {int(i) for i in session.scalars(stmt) if i is not None}


# --- Runs and outcomes ----------------------------------------------------------------------------------


def finished_run(session: Session, submission_id: uuid.UUID, kind: str) -> MatchRun | None:
    stmt = select(MatchRun).where(
        MatchRun.submission_id == submission_id, MatchRun.kind == kind, MatchRun.status == "succeeded"
    )
    return session.scalars(stmt.limit(1)).first()


def add_runs(session: Session, runs: Sequence[dict[str, Any]]) -> None:
    session.execute(insert(MatchRun), list(runs))


def delete_unfinished_outcomes(session: Session, submission_ids: Sequence[uuid.UUID]) -> None:
    """Outcomes of lists no run has finished: what an interrupted round stored part of (SQLite)."""
    session.execute(delete(MatchOutcome).where(MatchOutcome.submission_id.in_(submission_ids)))


def insert_outcomes(session: Session, frame: pl.DataFrame) -> None:
    bulk.insert_frame(session, cast(Table, MatchOutcome.__table__), frame)


# --- Review queue ---------------------------------------------------------------------------------------


def list_reviews(
    session: Session, *, la_id: str, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> Sequence[MatchOutcome]:
    """Pending reviews of one LA, oldest first, keyset-paginated on (created_at, id)."""
    stmt = select(MatchOutcome).where(
        MatchOutcome.recipient_la == la_id, MatchOutcome.review_status == "pending"
    )
    if after is not None:
        at, last_id = after
        stmt = stmt.where(
            or_(MatchOutcome.created_at > at, and_(MatchOutcome.created_at == at, MatchOutcome.id > last_id))
        )
    return session.scalars(stmt.order_by(MatchOutcome.created_at, MatchOutcome.id).limit(limit)).all()


def list_dual_registrations(
    session: Session, *, la_id: str, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> Sequence[MatchOutcome]:
    """Outcomes of one LA's health rows matched to a child on more than one register, oldest first."""
    stmt = select(MatchOutcome).where(
        MatchOutcome.recipient_la == la_id, MatchOutcome.other_registrations.is_not(None)
    )
    if after is not None:
        at, last_id = after
        stmt = stmt.where(
            or_(MatchOutcome.created_at > at, and_(MatchOutcome.created_at == at, MatchOutcome.id > last_id))
        )
    return session.scalars(stmt.order_by(MatchOutcome.created_at, MatchOutcome.id).limit(limit)).all()


def get_review(
    session: Session, *, la_id: str, review_id: uuid.UUID, lock: bool = False
) -> MatchOutcome | None:
    stmt = select(MatchOutcome).where(
        MatchOutcome.id == review_id,
        MatchOutcome.recipient_la == la_id,
        MatchOutcome.review_status.is_not(None),
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def later_job_queued(session: Session, job_id: uuid.UUID) -> bool:
    """Is a job of the same kind, created after this one, still waiting to run?"""
    this = select(Job.kind, Job.created_at).where(Job.id == job_id).subquery()
    stmt = select(Job.id).where(
        Job.kind == this.c.kind, Job.created_at > this.c.created_at, Job.status == "queued"
    )
    return session.execute(stmt.limit(1)).first() is not None


# --- Register generation --------------------------------------------------------------------------------


def register_generation(session: Session) -> int:
    value = session.scalar(
        select(MatchIndexGeneration.generation).where(MatchIndexGeneration.id == _GENERATION_ROW)
    )
    return int(value or 0)


def bump_register_generation(session: Session, now: dt.datetime) -> int:
    """Add one to the generation in a single upsert, so concurrent bumps neither collide nor get lost."""
    table = MatchIndexGeneration.__table__
    stmt = _dialect_insert(session)(table).values(id=_GENERATION_ROW, generation=1, changed_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.id], set_={"generation": table.c.generation + 1, "changed_at": now}
    )
    return int(session.execute(stmt.returning(table.c.generation)).scalar_one())


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
