"""Every query on the partner and partner_key tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.jose_adapter import KeyAlg
from app.partners.models import Partner, PartnerKey, PartnerKind, PartnerStatus


class SigningKeyStatus(NamedTuple):
    """What a signature check needs of a key (partner, kid) and its partner: plain columns, no ORM objects."""

    partner_id: str
    partner_kind: PartnerKind
    partner_status: PartnerStatus
    kid: str
    alg: KeyAlg
    public_jwk: dict[str, Any]
    thumbprint: str
    not_before: dt.datetime
    revoked_at: dt.datetime | None

    def usable_at(self, now: dt.datetime) -> bool:
        return self.not_before <= now and (self.revoked_at is None or self.revoked_at > now)


def get_partner(session: Session, partner_id: str) -> Partner | None:
    return session.get(Partner, partner_id)


def list_partners(session: Session, kind: PartnerKind | None = None) -> Sequence[Partner]:
    statement = select(Partner).order_by(Partner.kind, Partner.id)
    if kind is not None:
        statement = statement.where(Partner.kind == kind)
    return session.scalars(statement).all()


def add_partner(session: Session, partner: Partner) -> None:
    session.add(partner)
    session.flush()


def get_key(session: Session, partner_id: str, kid: str) -> PartnerKey | None:
    statement = select(PartnerKey).where(PartnerKey.partner_id == partner_id, PartnerKey.kid == kid)
    return session.scalars(statement).one_or_none()


def get_signing_key(session: Session, partner_id: str, kid: str) -> SigningKeyStatus | None:
    """The key registered as (partner, kid) and its partner's status, in one query; never a search across keys."""
    statement = (
        select(
            Partner.id,
            Partner.kind,
            Partner.status,
            PartnerKey.kid,
            PartnerKey.alg,
            PartnerKey.public_jwk,
            PartnerKey.thumbprint,
            PartnerKey.not_before,
            PartnerKey.revoked_at,
        )
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(PartnerKey.partner_id == partner_id, PartnerKey.kid == kid)
    )
    row = session.execute(statement).one_or_none()
    return None if row is None else SigningKeyStatus(*row)


def list_keys(session: Session, partner_id: str) -> Sequence[PartnerKey]:
    statement = select(PartnerKey).where(PartnerKey.partner_id == partner_id).order_by(PartnerKey.created_at)
    return session.scalars(statement).all()


def add_key(session: Session, key: PartnerKey) -> None:
    session.add(key)
    session.flush()
