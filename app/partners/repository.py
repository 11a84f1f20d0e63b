"""Every query on the partner and partner_key tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.partners.models import Partner, PartnerKey, PartnerKind


class PartnerRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, partner_id: str) -> Partner | None:
        return self.session.get(Partner, partner_id)

    def list(self, kind: PartnerKind | None = None) -> Sequence[Partner]:
        statement = select(Partner).order_by(Partner.kind, Partner.id)
        if kind is not None:
            statement = statement.where(Partner.kind == kind)
        return self.session.scalars(statement).all()

    def add(self, partner: Partner) -> None:
        self.session.add(partner)
        self.session.flush()

    def get_key(self, partner_id: str, kid: str) -> PartnerKey | None:
        statement = select(PartnerKey).where(PartnerKey.partner_id == partner_id, PartnerKey.kid == kid)
        return self.session.scalars(statement).one_or_none()

    def get_key_and_partner(self, partner_id: str, kid: str) -> tuple[PartnerKey, Partner] | None:
        """The key registered as (partner, kid) with its partner, in one query; never a search across keys."""
        statement = (
            select(PartnerKey, Partner)
            .join(Partner, Partner.id == PartnerKey.partner_id)
            .where(PartnerKey.partner_id == partner_id, PartnerKey.kid == kid)
        )
        row = self.session.execute(statement).one_or_none()
        if row is None:
            return None
        key, partner = row
        return key, partner

    def list_keys(self, partner_id: str) -> Sequence[PartnerKey]:
        statement = (
            select(PartnerKey).where(PartnerKey.partner_id == partner_id).order_by(PartnerKey.created_at)
        )
        return self.session.scalars(statement).all()

    def add_key(self, key: PartnerKey) -> None:
        self.session.add(key)
        self.session.flush()
