"""Set-up shared by the benchmarks: a fresh migrated PostgreSQL database, the demo partners, one key."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from cryptography.hazmat.primitives.asymmetric import ec

from app.core.db import make_engine, make_session_factory
from app.core.jose_adapter import KeyAlg, public_jwk
from app.core.migrate import upgrade
from app.partners import service as partners_service

ADMIN_DSN = os.environ.get("CME_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database() -> Iterator[str]:
    """A throw-away database, migrated and seeded with the demo partners; yields its SQLAlchemy URL."""
    name = f"cme_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = f"{ADMIN_DSN.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        upgrade(url)
        engine = make_engine(url)
        with make_session_factory(engine).begin() as session:
            partners_service.seed_if_empty(session)
        engine.dispose()
        yield url
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def register_new_key(url: str, partner_id: str, kid: str) -> ec.EllipticCurvePrivateKey:
    """A fresh ES256 key pair whose public half is registered for the partner; returns the private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        now = dt.datetime.now(dt.UTC)
        partners_service.register_key(
            session, partner_id, public_jwk(key.public_key()), alg=KeyAlg.ES256, kid=kid,
            not_before=now - dt.timedelta(minutes=1), now=now,
        )  # fmt: skip
    engine.dispose()
    return key


def plain_dsn(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def settle(url: str, *tables: str) -> None:
    """VACUUM (ANALYZE) freshly bulk-loaded tables. Without it autovacuum starts its pass over the new rows
    (half a million and more) during the measured seconds, competing for the two cores: a steady-state
    database has had that pass long ago."""
    with psycopg.connect(plain_dsn(url), autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")  # type: ignore[arg-type]
