"""Tables of the security domain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


class SeenJti(Base):
    """Replay cache: one row per accepted bearer token until that token would be refused as expired anyway."""

    __tablename__ = "seen_jti"
    __table_args__ = (Index("ix_seen_jti_expires_at", "expires_at"),)

    partner_id: Mapped[str] = mapped_column(ForeignKey("partner.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
