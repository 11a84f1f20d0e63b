"""Tables of the CME database: candidates, records, their history, removal clocks and stubs.

Personal data lives only in `cme_candidate` (while open) and `cme_record`. Everything else holds ids,
codes and dates, so it can outlive the child's data as the non-identifying trace the law allows.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime

LA_ID_LENGTH = 16


class _ChildData:
    """Schedule 2 paras 1-2-3, all optional (R3.3): what is available, never inferred."""

    given_name: Mapped[str | None] = mapped_column(String(120))
    middle_names: Mapped[str | None] = mapped_column(String(120))
    family_name: Mapped[str | None] = mapped_column(String(120))
    former_names: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    address_lines: Mapped[list[str] | None] = mapped_column(JSONType)
    town: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(35))
    postcode_district: Mapped[str | None] = mapped_column(String(4))
    address_is_last_known: Mapped[bool | None] = mapped_column(Boolean)
    # Hash of the normalised names and date of birth: finds the same child again without a name scan.
    identity_key: Mapped[str | None] = mapped_column(String(64))


class CmeCandidate(_ChildData, Base):
    """A health-list child nobody matched (reg 3 not yet decided); a bare stub once closed."""

    __tablename__ = "cme_candidate"
    __table_args__ = (
        Index("ix_cme_candidate_la_id_status_opened_at", "la_id", "status", "opened_at"),
        Index("ix_cme_candidate_la_id_identity_key", "la_id", "identity_key"),
        # A matching round looks up what an earlier attempt opened from its lists (re-runs are idempotent).
        Index("ix_cme_candidate_submission_id", "submission_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    submission_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    match_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    health_child_id: Mapped[int | None] = mapped_column(BigInteger)
    sightings: Mapped[int] = mapped_column(Integer)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)

    # Every UPDATE bumps the version (the ETag) and checks the one it read: no lost updates.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as a plain dict)


class CmeRecord(_ChildData, Base):
    """A child's CME record (reg 3): Schedule 2 items, each with its provenance."""

    __tablename__ = "cme_record"
    __table_args__ = (
        Index("ix_cme_record_la_id_created_at", "la_id", "created_at"),
        Index("ix_cme_record_la_id_identity_key", "la_id", "identity_key"),
        Index("ix_cme_record_la_id_csa_removal_on", "la_id", "csa_removal_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    candidate_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sensitive: Mapped[bool] = mapped_column(Boolean)
    suspected_inaccurate: Mapped[bool] = mapped_column(Boolean)
    restricted: Mapped[bool] = mapped_column(Boolean)
    # Schedule 2 paras 4-6.
    parents: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    education_providers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    additional_learning_needs: Mapped[str | None] = mapped_column(Text)
    additional_learning_provision: Mapped[str | None] = mapped_column(Text)
    # field name -> where its current value came from (submission, or officer and when).
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # First day the child is above compulsory school age (reg 11), kept so the daily job is one query.
    csa_removal_on: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)

    # Every UPDATE bumps the version (the ETag) and checks the one it read: no lost updates.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as a plain dict)


class CmeEvent(Base):
    """History of a candidate or record: who did what, when and why (R3.4 decision log, R5.2 reasons)."""

    __tablename__ = "cme_event"
    __table_args__ = (Index("ix_cme_event_subject_id_id", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    officer_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    # Officers' free text (basis of a decision, reason of a correction); deleted with the record.
    reason: Mapped[str | None] = mapped_column(Text)
    fields: Mapped[list[str]] = mapped_column(JSONType)


class CmeRemovalEvent(Base):
    """The LA became aware of a removal ground (regs 6-11), with the evidence it relied on."""

    __tablename__ = "cme_removal_event"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cme_record.id", ondelete="CASCADE"), index=True)
    ground: Mapped[str] = mapped_column(String(40))
    became_aware_on: Mapped[dt.date] = mapped_column(Date)
    left_area_on: Mapped[dt.date | None] = mapped_column(Date)
    receiving_la: Mapped[str | None] = mapped_column(String(LA_ID_LENGTH))
    evidence: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(String(64))


class CmeDuty(Base):
    """One legal clock running against a record: inform the receiving LA, or remove the record."""

    __tablename__ = "cme_duty"
    __table_args__ = (Index("ix_cme_duty_la_id_due_on", "la_id", "due_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cme_record.id", ondelete="CASCADE"), index=True)
    removal_event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cme_removal_event.id", ondelete="CASCADE"), index=True
    )
    ground: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(32))
    regulation: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[str] = mapped_column(String(16))
    basis: Mapped[str] = mapped_column(String(20))
    due_on: Mapped[dt.date] = mapped_column(Date)
    warn_from: Mapped[dt.date] = mapped_column(Date)


class CmeRecordStub(Base):
    """What remains of a removed record: ids, regulation and dates; nothing that identifies the child."""

    __tablename__ = "cme_record_stub"
    __table_args__ = (Index("ix_cme_record_stub_la_id_removed_at", "la_id", "removed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    removed_by: Mapped[str | None] = mapped_column(String(64))
    # A removal ground (regs 6-11), or ERASURE (UK GDPR art. 17), which has no regulation.
    ground: Mapped[str] = mapped_column(String(40))
    regulation: Mapped[int | None] = mapped_column(Integer)
    became_aware_on: Mapped[dt.date] = mapped_column(Date)
    remove_due_on: Mapped[dt.date | None] = mapped_column(Date)
    # Erasure only: the data protection officer's reason the law allows it (never the child's details).
    reason: Mapped[str | None] = mapped_column(Text)


class CmeTransfer(Base):
    """Reg 6: a record sent to the receiving LA, as a pending incoming transfer (pilot LA) or a signed package.

    `snapshot` (the record's Schedule 2 data) exists only while a pilot LA has not decided; it is deleted on
    acceptance (it becomes that LA's record) or decline. Issued packages are kept as a hash only.
    """

    __tablename__ = "cme_transfer"
    __table_args__ = (Index("ix_cme_transfer_to_la_status_created_at", "to_la", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    from_la: Mapped[str] = mapped_column(String(LA_ID_LENGTH), index=True)
    to_la: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    new_record_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    package_sha256: Mapped[str | None] = mapped_column(String(64))
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 (SQLAlchemy reads it as a plain dict)


class CmeSubjectAccessRequest(Base):
    """A subject access request about a record (UK GDPR art. 15) and its one-month clock; ids and dates only."""

    __tablename__ = "cme_subject_access_request"
    __table_args__ = (Index("ix_cme_subject_access_request_la_id_due_on", "la_id", "due_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    la_id: Mapped[str] = mapped_column(String(LA_ID_LENGTH))
    # No foreign key: the request must still be answered if the record is removed meanwhile.
    record_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    warn_from: Mapped[dt.date] = mapped_column(Date)
    extended_due_on: Mapped[dt.date] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str | None] = mapped_column(String(64))
    # Extended (art. 12(3): complex or numerous requests): on the day the requester was told, and why;
    # `due_on` and `warn_from` then follow the extended deadline.
    extended_on: Mapped[dt.date | None] = mapped_column(Date)
    extension_reason: Mapped[str | None] = mapped_column(String(16))
    answered_on: Mapped[dt.date | None] = mapped_column(Date)
    answered_by: Mapped[str | None] = mapped_column(String(64))
