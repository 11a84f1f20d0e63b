"""The append-only audit log: one hash-chained row per read or change of CME data."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime


class AuditEvent(Base):
    """Who did what to which objects, when and why. Ids only: never names, dates of birth or addresses."""

    __tablename__ = "audit_event"
    # The access log of a subject-access export asks which events name an id: a containment query this
    # index answers without reading the whole log, which grows by every audited read. `fastupdate` off:
    # the pending list would otherwise be merged by whichever request's append crosses its size limit.
    __table_args__ = (
        Index(
            "ix_audit_event_object_ids",
            "object_ids",
            postgresql_using="gin",
            postgresql_ops={"object_ids": "jsonb_path_ops"},
            postgresql_with={"fastupdate": "off"},
        ).ddl_if(dialect="postgresql"),
    )

    # Gapless, assigned by `service.record` under a lock, so a deleted row shows up as a gap.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    partner_id: Mapped[str | None] = mapped_column(String(16), index=True)
    officer_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str | None] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_ids: Mapped[list[str]] = mapped_column(JSONType)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """The chain's head as signed by the service once a day (`app.audit.checkpoints`).

    Kept here for the data protection officer to read and copy out; the copy that matters is the one the
    database superuser cannot rewrite (`CME_AUDIT_CHECKPOINT_DIR`, decision 0007).
    """

    __tablename__ = "audit_checkpoint"

    # One a day: the date (UTC) of `signed_at`. Two days may name the same seq when nothing was appended.
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    jws: Mapped[str] = mapped_column(Text)


class AuditIntervalCheckpoint(Base):
    """The chain's head as signed every few minutes (`app.audit.interval`), each one taken after the events
    since the previous one verified. Copied out like the daily ones when `CME_AUDIT_CHECKPOINT_DIR` is set.
    """

    __tablename__ = "audit_interval_checkpoint"

    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
