"""Submissions (with their signature evidence and receipt) and the child rows they carry.

Health-list rows (`health_child`) are short-lived staging data: matching deletes every row it finds on an
education register. Education rows (`education_child`) are the registers cme-hub matches against; a new
register snapshot replaces the sender's previous one of the same kind and scope.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime


class Submission(Base):
    __tablename__ = "submission"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(20), ForeignKey("partner.id"), index=True)
    recipient_id: Mapped[str | None] = mapped_column(String(20), ForeignKey("partner.id"))
    kind: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str | None] = mapped_column(String(35))
    as_of: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Signature evidence, kept after the records themselves are gone.
    payload_sha256: Mapped[str] = mapped_column(String(64))
    jws_sha256: Mapped[str] = mapped_column(String(64))
    jws_header: Mapped[dict[str, Any]] = mapped_column(JSONType)
    signer_kid: Mapped[str] = mapped_column(String(128))
    signer_thumbprint: Mapped[str] = mapped_column(String(64))
    record_count: Mapped[int] = mapped_column(Integer)
    accepted_count: Mapped[int] = mapped_column(Integer)
    flagged_count: Mapped[int] = mapped_column(Integer)
    rejected_count: Mapped[int] = mapped_column(Integer)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSONType)
    receipt_jws: Mapped[str] = mapped_column(Text)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class _ChildColumns:
    """Columns shared by health and education rows (Schedule 2 paras 1-3 plus matching aids)."""

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    record_index: Mapped[int] = mapped_column(Integer)
    given_name: Mapped[str | None] = mapped_column(String(120))
    middle_names: Mapped[str | None] = mapped_column(String(120))
    family_name: Mapped[str | None] = mapped_column(String(120))
    former_names: Mapped[list[dict[str, str | None]]] = mapped_column(JSONType)
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    address_lines: Mapped[list[str]] = mapped_column(JSONType)
    town: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(35))
    postcode_norm: Mapped[str | None] = mapped_column(String(8))
    nhs_number: Mapped[str | None] = mapped_column(String(10))
    flags: Mapped[list[str]] = mapped_column(JSONType)


class HealthChild(_ChildColumns, Base):
    __tablename__ = "health_child"
    __table_args__ = (Index("ix_health_child_submission_id_record_index", "submission_id", "record_index"),)

    submission_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"))
    recipient_la: Mapped[str] = mapped_column(String(20), index=True)
    address_is_last_known: Mapped[bool] = mapped_column(Boolean)


class EducationChild(_ChildColumns, Base):
    __tablename__ = "education_child"

    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submission.id", ondelete="CASCADE"), index=True
    )
    register: Mapped[str] = mapped_column(String(32))
    # The LA whose register this is: the sending LA, or for an independent school its LA.
    la_id: Mapped[str] = mapped_column(String(20), index=True)
    preferred_given_name: Mapped[str | None] = mapped_column(String(120))
    preferred_family_name: Mapped[str | None] = mapped_column(String(120))
    sex: Mapped[str | None] = mapped_column(String(1))
    school_number: Mapped[str | None] = mapped_column(String(7))
    school_name: Mapped[str | None] = mapped_column(String(120))
    admission_date: Mapped[dt.date | None] = mapped_column(Date)
    provision_type: Mapped[str | None] = mapped_column(String(32))
    provision_name: Mapped[str | None] = mapped_column(String(120))
