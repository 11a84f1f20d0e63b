"""Tables of the matching integration: model versions, runs, per-record outcomes, the register generation.

Outcomes hold ids, comparison levels and weights only: never a name, date or address. They outlive the
health staging rows they describe, so the evidence of every decision remains after minimisation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime

_BigId = BigInteger().with_variant(Integer, "sqlite")


class MatchModelVersion(Base):
    """One set of matching parameters (a `MatchModel` as JSON); exactly one row is active."""

    __tablename__ = "match_model"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, index=True)


class MatchRun(Base):
    """One matching pass: a health list against every register, or a re-match after a register change."""

    __tablename__ = "match_run"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # A health list is matched in a round with every other list of its period (decision 0012).
    period: Mapped[str | None] = mapped_column(String(7), index=True)
    round_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    model_version: Mapped[str] = mapped_column(String(64))
    model_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Counts by outcome and by register type, and timings: no personal data.
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType)


class MatchOutcome(Base):
    """The decision for one health-list row; `possible` ones form the LA's review queue."""

    __tablename__ = "match_outcome"
    __table_args__ = (
        UniqueConstraint("submission_id", "record_index"),
        # Only possible matches are ever reviewed: a partial index stays small (and off the round's write).
        Index(
            "ix_match_outcome_dual_registrations",
            "recipient_la",
            "created_at",
            "id",
            postgresql_where=text("other_registrations IS NOT NULL"),
            sqlite_where=text("other_registrations IS NOT NULL"),
        ),
        Index(
            "ix_match_outcome_review_queue",
            "recipient_la",
            "review_status",
            "created_at",
            "id",
            postgresql_where=text("review_status IS NOT NULL"),
            sqlite_where=text("review_status IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    record_index: Mapped[int] = mapped_column(Integer)
    recipient_la: Mapped[str] = mapped_column(String(20))
    # The staging row's id; the row itself is deleted once nothing needs it.
    health_child_id: Mapped[int] = mapped_column(_BigId)
    outcome: Mapped[str] = mapped_column(String(16))
    education_child_id: Mapped[int | None] = mapped_column(_BigId)
    education_la: Mapped[str | None] = mapped_column(String(20))
    register: Mapped[str | None] = mapped_column(String(32))
    match_weight: Mapped[float | None] = mapped_column(Float)
    match_probability: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    # json, not jsonb, on PostgreSQL: never queried inside, and a round writes one per health row (parsing
    # it into jsonb was 40% of the time COPY took for 481,000 outcomes).
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Review of a `possible` outcome: pending, confirmed (matched) or rejected (unmatched).
    review_status: Mapped[str | None] = mapped_column(String(16))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    review_reason: Mapped[str | None] = mapped_column(String(500))
    candidate_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Dual registration: the other education records of the same child (ids, register types and LAs);
    # SQL NULL (not JSON null) when there are none, so the LA's list of them is a partial index.
    other_registrations: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    )


class MatchIndexGeneration(Base):
    """A counter bumped whenever a register changes, so every process knows its real-time index is stale."""

    __tablename__ = "match_index_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(_BigId)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class MatchPeriod(Base):
    """The health lists of one period (the month of their as-of date) are matched together, in rounds.

    The row is claimed by the job running a round (`round_job_id`), so two workers never match one period
    at once; `rounds` counts the rounds finished (a list arriving after the first is matched in a later one).
    """

    __tablename__ = "match_period"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    rounds: Mapped[int] = mapped_column(Integer)
    round_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    round_claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
