"""Partner organisations and their registered public keys."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Enum, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, JSONType, UTCDateTime
from app.core.jose_adapter import KeyAlg


class PartnerKind(StrEnum):
    local_health_board = "local_health_board"
    gp_practice = "gp_practice"
    local_authority = "local_authority"
    independent_school = "independent_school"
    welsh_government = "welsh_government"


class PartnerStatus(StrEnum):
    active = "active"
    suspended = "suspended"


def _string_enum(enum: type[StrEnum], length: int) -> Enum:
    # Stored as plain VARCHAR (no database enum type, no CHECK): adding a member needs no migration.
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


PARTNER_ID_LENGTH = 16


class Partner(Base):
    __tablename__ = "partner"

    id: Mapped[str] = mapped_column(String(PARTNER_ID_LENGTH), primary_key=True)
    kind: Mapped[PartnerKind] = mapped_column(_string_enum(PartnerKind, 32))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[PartnerStatus] = mapped_column(
        _string_enum(PartnerStatus, 16), default=PartnerStatus.active
    )
    is_pilot: Mapped[bool] = mapped_column(Boolean, default=False)
    # The LA or health board a GP practice or independent school sits in.
    area_id: Mapped[str | None] = mapped_column(ForeignKey("partner.id"), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    keys: Mapped[list[PartnerKey]] = relationship(back_populates="partner", lazy="raise")

    @property
    def gss_code(self) -> str | None:
        """LAs and health boards are identified by their ONS GSS code."""
        if self.kind in (PartnerKind.local_authority, PartnerKind.local_health_board):
            return self.id
        return None


class PartnerKey(Base):
    __tablename__ = "partner_key"
    __table_args__ = (UniqueConstraint("partner_id", "kid"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"))
    kid: Mapped[str] = mapped_column(String(128))
    alg: Mapped[KeyAlg] = mapped_column(_string_enum(KeyAlg, 8))
    kty: Mapped[str] = mapped_column(String(8))
    crv: Mapped[str | None] = mapped_column(String(16), default=None)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONType)
    thumbprint: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    partner: Mapped[Partner] = relationship(back_populates="keys", lazy="raise")
