"""Replay cache for bearer tokens, shared by every process through the database.

Burning a token's jti is one statement that also re-checks, at that moment, that the signing key is still
usable (partner active, key not revoked, within its validity, the same JWK): an INSERT ... SELECT ...
WHERE EXISTS, ON CONFLICT DO NOTHING, RETURNING. Run in autocommit it is one round trip, and it lets the
verification key itself be cached in the process: a revocation or suspension still applies to the very
next request, because the burn refuses it. Expired rows are purged by a periodic tick, not per request.

On PostgreSQL the burn is sent from the event loop over a small pool of asynchronous psycopg connections
(`PostgresJtiBurner`): no thread-pool hand-off per request. The embedded SQLite default runs the same
statement in the thread pool (`ThreadJtiBurner`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Insert, String, bindparam, delete, exists, make_url, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.core.db import AsyncPoolOwner, NoAsyncPool, UTCDateTime, is_sqlite, make_async_pool
from app.partners.models import Partner, PartnerKey, PartnerStatus
from app.security.models import SeenJti


def _burn_statement(dialect: str) -> Insert:
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


@dataclass(frozen=True, slots=True)
class JtiBurn:
    """Remember `jti` for `partner_id` until `expires_at`, if the key (partner, kid, thumbprint) is usable
    at `now`."""

    partner_id: str
    kid: str
    thumbprint: str
    jti: str
    expires_at: dt.datetime
    now: dt.datetime

    def parameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def burn_jti(session: Session, burn: JtiBurn) -> bool:
    """Store the burn; False if nothing was stored: a replay, or a key no longer usable (the caller tells
    which)."""
    statement = _BURN[session.get_bind().dialect.name]
    # On the connection: through the session, a parameter dict would make this an ORM bulk insert.
    # RETURNING yields the row only when it was inserted.
    return session.connection().execute(statement, burn.parameters()).first() is not None


class JtiBurner(Protocol):
    """Where a request burns its token's jti (see `burn_jti` for what a refusal means)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def burn(self, burn: JtiBurn) -> bool: ...


class ThreadJtiBurner(NoAsyncPool):
    """`burn_jti` in the thread pool, in autocommit on a session of its own (the embedded SQLite default)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    async def burn(self, burn: JtiBurn) -> bool:
        def in_autocommit() -> bool:
            with self._factory() as session:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                return burn_jti(session, burn)

        return await run_in_threadpool(in_autocommit)


class PostgresJtiBurner(AsyncPoolOwner):
    """The burn statement, compiled once by SQLAlchemy, sent from the event loop on pooled asynchronous
    psycopg connections in autocommit.

    These connections do not wait for the WAL flush (`synchronous_commit=off`, about 4 ms per commit on
    the project machine): a request that writes anything (every change, every audited read) commits with
    a wait, and that flush carries the earlier burn's WAL record too, so it never answers before its jti
    is durable. Only the burn of a request that wrote nothing (refused, or an unaudited read) could be lost
    to a database crash within a fraction of a second.
    """

    def __init__(self, database_url: str, *, max_connections: int) -> None:
        dialect = make_url("postgresql+psycopg://").get_dialect()()
        compiled = _BURN["postgresql"].compile(dialect=dialect)
        self._sql = str(compiled)
        # The values SQLAlchemy would send, its type processing applied (the partner status enum, the
        # UTC timestamps), so the raw execution binds exactly what `burn_jti` binds.
        self._fixed = {k: v for k, v in compiled.params.items() if v is not None}
        self._processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }
        self._pool = make_async_pool(database_url, max_connections=max_connections, flush_wal_on_commit=False)

    def parameters(self, burn: JtiBurn) -> dict[str, Any]:
        bound = {**self._fixed, **burn.parameters()}
        return {k: (self._processors[k](v) if k in self._processors else v) for k, v in bound.items()}

    async def burn(self, burn: JtiBurn) -> bool:
        async with self._pool.connection() as connection:
            cursor = await connection.execute(self._sql, self.parameters(burn), prepare=True)
            return await cursor.fetchone() is not None


def jti_burner(database_url: str, factory: sessionmaker[Session], *, max_connections: int) -> JtiBurner:
    """The burner for the database `database_url` names (`factory` makes sessions on it)."""
    if is_sqlite(database_url):
        return ThreadJtiBurner(factory)
    return PostgresJtiBurner(database_url, max_connections=max_connections)


def purge_expired(session: Session, *, now: dt.datetime) -> int:
    """Delete rows past their expiry: by then the token's own time check refuses it."""
    result = session.execute(delete(SeenJti).where(SeenJti.expires_at < now))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_tick(factory: sessionmaker[Session], now: dt.datetime) -> None:
    with factory.begin() as session:
        purge_expired(session, now=now)
