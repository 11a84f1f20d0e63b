"""Engine, session and declarative base shared by every domain."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import JSON, DateTime, MetaData, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Named constraints make migrations diffable and reversible (Alembic naming.rst).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")

logger = logging.getLogger(__name__)


def made_on(dialect: str) -> Callable[..., bool]:
    """An Alembic `include_object` that leaves out what the models create only on other dialects
    (`ddl_if(dialect=...)`, such as PostgreSQL's GIN index on the audit log): comparing the models with a
    migrated SQLite database must not report those as missing."""

    def include(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        condition = getattr(obj, "_ddl_if", None)  # SQLAlchemy has no public accessor for it
        wanted = getattr(condition, "dialect", None)
        return wanted is None or wanted == dialect or (not isinstance(wanted, str) and dialect in wanted)

    return include


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on both dialects (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        # Never show column values: they may be personal data.
        return f"<{type(self).__name__}>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


SQLITE_BUSY_TIMEOUT_MS = 5000


def sqlite_accepts_writes(engine: Engine, wait_ms: int = 1000) -> bool:
    """Whether a write could start on this SQLite database within `wait_ms` (SQLite has one writer: a
    request that writes, even only its audit event, waits for the writer ahead of it)."""
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None  # a checked-out connection always has its DBAPI connection
        level = connection.isolation_level
        connection.isolation_level = None  # autocommit: the BEGIN below is ours
        try:
            connection.execute(f"PRAGMA busy_timeout={wait_ms}")
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            connection.isolation_level = level
    finally:
        raw.close()


def is_sqlite(url: str) -> bool:
    """The embedded default (SQLite) rather than PostgreSQL."""
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """An engine for `url`."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            if not Path(path).exists():
                # Said once, in one line: a database created somewhere unexpected is otherwise invisible.
                logger.warning(
                    "No database at %s: creating a new empty one (`cme migrate` or `cme serve` sets it up; "
                    "CME_DATABASE_URL or CME_DATA_DIR choose another).",
                    Path(path).absolute(),
                )
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout. A connection that died (server restart) fails
    # its statement once; SQLAlchemy then invalidates the whole pool, so the next checkouts are fresh.
    # orjson reads the JSONB columns: json.loads was ~1.5 ms of a 50-row CME list page.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        json_deserializer=orjson.loads,
    )


def make_async_pool(
    url: str, *, max_connections: int, flush_wal_on_commit: bool = True
) -> AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]:
    """Asynchronous psycopg connections in autocommit on the PostgreSQL database `url` names, for the few
    statements sent from the event loop (jti burns, read-audit events). Opened by the app's lifespan.
    `flush_wal_on_commit=False` (`synchronous_commit=off`) is for the jti burns only (`app.security.replay`)."""
    options = {} if flush_wal_on_commit else {"options": "-c synchronous_commit=off"}
    return AsyncConnectionPool(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
        min_size=1,
        max_size=max_connections,
        # A free connection is there at once unless PostgreSQL is unreachable: fail the request after a
        # few seconds rather than hold it for the default 30.
        timeout=5,
        open=False,
        kwargs={"autocommit": True, **options},
    )


class AsyncPoolOwner:
    """Works over its own pool from `make_async_pool`, opened and closed by the app's lifespan."""

    _pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]

    async def open(self) -> None:
        # Without waiting: the service starts (and answers its liveness probe) while PostgreSQL is away.
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()


class NoAsyncPool:
    """Works through sessions in the thread pool (SQLite): nothing to open or close."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None


def make_session_factory(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions on `engine`; `info` seeds each session's `info` (per-app policies such as the audit's)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False, info=info)
