"""Replay cache for bearer tokens, shared by every process through the database.

Burning a token's jti is one statement that also re-checks, at that moment, that the signing key is still
usable (partner active, key not revoked, within its validity, the same JWK): an INSERT ... SELECT ...
WHERE EXISTS, ON CONFLICT DO NOTHING, RETURNING. Run in autocommit it is one round trip, and it lets the
verification key itself be cached in the process: a revocation or suspension still applies to the very
next request, because the burn refuses it. Expired rows are purged by a periodic tick, not per request.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Executable, Select, delete, exists, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import UTCDateTime
from app.partners.models import Partner, PartnerKey, PartnerStatus
from app.security.models import SeenJti

_COLUMNS = ["partner_id", "jti", "expires_at"]
_CONFLICT = ["partner_id", "jti"]


def burn_jti(
    session: Session,
    *,
    partner_id: str,
    kid: str,
    thumbprint: str,
    jti: str,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> bool:
    """Remember `jti` for `partner_id` until `expires_at` if the key (partner, kid, thumbprint) is usable at
    `now`; False if it was not stored: a replay, or a key no longer usable (the caller tells which)."""
    usable = exists().where(
        PartnerKey.partner_id == partner_id,
        PartnerKey.kid == kid,
        PartnerKey.thumbprint == thumbprint,
        PartnerKey.not_before <= now,
        or_(PartnerKey.revoked_at.is_(None), PartnerKey.revoked_at > now),
        Partner.id == PartnerKey.partner_id,
        Partner.status == PartnerStatus.active,
    )
    row = select(
        literal(partner_id).label("partner_id"),
        literal(jti).label("jti"),
        literal(expires_at, UTCDateTime()).label("expires_at"),
    ).where(usable)
    statement = _insert_unless_present(session.get_bind().dialect.name, row)
    # RETURNING yields the row only when it was inserted (rowcount is not reliable on the ORM path).
    return session.execute(statement).first() is not None


def purge_expired(session: Session, *, now: dt.datetime) -> int:
    """Delete rows past their expiry: by then the token's own time check refuses it."""
    result = session.execute(delete(SeenJti).where(SeenJti.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_tick(factory: sessionmaker[Session], now: dt.datetime) -> None:
    with factory.begin() as session:
        purge_expired(session, now=now)


def _insert_unless_present(dialect: str, row: Select[str, str, dt.datetime]) -> Executable:
    """INSERT ... SELECT ... ON CONFLICT (partner_id, jti) DO NOTHING RETURNING jti, in each dialect we run on."""
    if dialect == "postgresql":
        return (
            postgresql.insert(SeenJti)
            .from_select(_COLUMNS, row)
            .on_conflict_do_nothing(index_elements=_CONFLICT)
            .returning(SeenJti.jti)
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(SeenJti)
            .from_select(_COLUMNS, row)
            .on_conflict_do_nothing(index_elements=_CONFLICT)
            .returning(SeenJti.jti)
        )
    raise NotImplementedError(f"no replay cache insert for dialect {dialect}")
