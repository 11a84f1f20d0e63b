"""Every query on the partner and partner_key tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.partners.models import Partner, PartnerKey, PartnerKind


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


def get_key_and_partner(session: Session, partner_id: str, kid: str) -> tuple[PartnerKey, Partner] | None:
    """The key registered as (partner, kid) with its partner, in one query; never a search across keys."""
    statement = (
        select(PartnerKey, Partner)
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(PartnerKey.partner_id == partner_id, PartnerKey.kid == kid)
    )
    row = session.execute(statement).one_or_none()
    if row is None:
        return None
    key, partner = row
    return key, partner


def list_keys(session: Session, partner_id: str) -> Sequence[PartnerKey]:
    statement = select(PartnerKey).where(PartnerKey.partner_id == partner_id).order_by(PartnerKey.created_at)
    return session.scalars(statement).all()


def add_key(session: Session, key: PartnerKey) -> None:
    session.add(key)
    session.flush()
