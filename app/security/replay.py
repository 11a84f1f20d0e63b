"""Replay cache for bearer tokens, shared by every process through the database.

Burning a token's jti is one statement that also re-checks, at that moment, that the signing key is still
usable (partner active, key not revoked, within its validity, the same JWK): an INSERT ... SELECT ...
WHERE EXISTS, ON CONFLICT DO NOTHING, RETURNING. Run in autocommit it is one round trip, and it lets the
verification key itself be cached in the process: a revocation or suspension still applies to the very
next request, because the burn refuses it. Expired rows are purged by a periodic tick, not per request.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Executable, String, bindparam, delete, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import UTCDateTime
from app.partners.models import Partner, PartnerKey, PartnerStatus
from app.security.models import SeenJti


def _burn_statement(dialect: str) -> Executable:
    """INSERT ... SELECT :partner_id, :jti, :expires_at WHERE EXISTS (the key is usable at :now)
    ON CONFLICT (partner_id, jti) DO NOTHING RETURNING jti, for one dialect."""
    now = bindparam("now", type_=UTCDateTime())
    usable = exists().where(
        PartnerKey.partner_id == bindparam("partner_id"),
        PartnerKey.kid == bindparam("kid"),
        PartnerKey.thumbprint == bindparam("thumbprint"),
        PartnerKey.not_before <= now,
        or_(PartnerKey.revoked_at.is_(None), PartnerKey.revoked_at > now),
        Partner.id == PartnerKey.partner_id,
        Partner.status == PartnerStatus.active,
    )
    row = select(
        bindparam("partner_id", type_=String()),
        bindparam("jti", type_=String()),
        bindparam("expires_at", type_=UTCDateTime()),
    ).where(usable)
    columns = ["partner_id", "jti", "expires_at"]
    conflict = ["partner_id", "jti"]
    if dialect == "postgresql":
        pg = postgresql.insert(SeenJti).from_select(columns, row)
        return pg.on_conflict_do_nothing(index_elements=conflict).returning(SeenJti.jti)
    if dialect == "sqlite":
        lite = sqlite.insert(SeenJti).from_select(columns, row)
        return lite.on_conflict_do_nothing(index_elements=conflict).returning(SeenJti.jti)
    raise NotImplementedError(f"no replay cache insert for dialect {dialect}")


# Built once per dialect: a burn per request should not rebuild and re-key the statement every time.
_BURN = {dialect: _burn_statement(dialect) for dialect in ("postgresql", "sqlite")}


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
    statement = _BURN[session.get_bind().dialect.name]
    parameters = {
        "partner_id": partner_id, "kid": kid, "thumbprint": thumbprint, "jti": jti,
        "expires_at": expires_at, "now": now,
    }  # fmt: skip
    # On the connection: through the session, a parameter dict would make this an ORM bulk insert.
    # RETURNING yields the row only when it was inserted.
    return session.connection().execute(statement, parameters).first() is not None


def purge_expired(session: Session, *, now: dt.datetime) -> int:
    """Delete rows past their expiry: by then the token's own time check refuses it."""
    result = session.execute(delete(SeenJti).where(SeenJti.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_tick(factory: sessionmaker[Session], now: dt.datetime) -> None:
    with factory.begin() as session:
        purge_expired(session, now=now)
