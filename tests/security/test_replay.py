"""The jti burn (replay cache and key re-check in one statement) on the embedded SQLite default as well as
PostgreSQL, and the periodic purge of expired rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app.audit.service import READS_WAIT_FOR_FLUSH
from app.core.db import make_engine, make_session_factory
from app.core.jose_adapter import KeyAlg, public_jwk, thumbprint
from app.core.migrate import upgrade
from app.partners import service as partners_service
from app.partners.models import Partner, PartnerKind, PartnerStatus
from app.security.models import SeenJti
from app.security.replay import JtiBurn, PostgresJtiBurner, burn_jti, purge_expired

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(minutes=5)


def _exercise(session: Session) -> None:
    session.add(
        Partner(id="WG", kind=PartnerKind.welsh_government, name="WG", is_pilot=False, created_at=NOW)
    )
    session.flush()
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    partners_service.register_key(
        session, "WG", jwk, alg=KeyAlg.ES256, kid="k1", not_before=NOW - dt.timedelta(days=1), now=NOW
    )
    key = {"partner_id": "WG", "kid": "k1", "thumbprint": thumbprint(jwk)}

    def burn(jti: str, now: dt.datetime = NOW, **overrides: str) -> bool:
        return burn_jti(session, JtiBurn(**{**key, **overrides}, jti=jti, expires_at=LATER, now=now))

    assert burn("a") is True
    assert burn("a") is False  # replayed
    assert burn("b") is True
    # The key is re-checked by the same statement: another JWK, an unknown kid, a key not yet valid.
    assert burn("c", thumbprint="x" * 43) is False
    assert burn("c", kid="k2") is False
    assert burn("c", now=NOW - dt.timedelta(days=2)) is False
    partner = session.get(Partner, "WG")
    assert partner is not None
    partner.status = PartnerStatus.suspended
    session.flush()
    assert burn("c") is False
    partner.status = PartnerStatus.active
    session.flush()
    partners_service.revoke_key(session, "WG", "k1", now=NOW)
    assert burn("c", now=NOW + dt.timedelta(seconds=1)) is False
    assert session.scalar(select(func.count()).select_from(SeenJti)) == 2
    # Once expired, rows are purged and the jti could be stored again (its token's exp refuses it anyway).
    assert purge_expired(session, now=LATER) == 0
    assert purge_expired(session, now=LATER + dt.timedelta(seconds=1)) == 2
    assert session.scalar(select(func.count()).select_from(SeenJti)) == 0


def test_on_postgresql(session: Session) -> None:
    _exercise(session)
    session.rollback()


def test_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/replay.db"
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            _exercise(session)
    finally:
        engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_event_loop_burner_on_postgresql(database_url: str, engine: Engine) -> None:
    """`PostgresJtiBurner` sends the same statement, with the same bound values, over its own pool."""
    factory = make_session_factory(engine)
    jwk = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    with factory.begin() as session:
        session.add(
            Partner(id="WG", kind=PartnerKind.welsh_government, name="WG", is_pilot=False, created_at=NOW)
        )
        session.flush()
        partners_service.register_key(
            session, "WG", jwk, alg=KeyAlg.ES256, kid="k1", not_before=NOW - dt.timedelta(days=1), now=NOW
        )
    key = {"partner_id": "WG", "kid": "k1", "thumbprint": thumbprint(jwk)}
    burner = PostgresJtiBurner(database_url, max_connections=2)
    await burner.open()
    try:

        async def burn(jti: str, now: dt.datetime = NOW, **overrides: str) -> bool:
            return await burner.burn(JtiBurn(**{**key, **overrides}, jti=jti, expires_at=LATER, now=now))

        def set_status(status: PartnerStatus) -> None:
            with factory.begin() as session:
                partner = session.get(Partner, "WG")
                assert partner is not None
                partner.status = status

        assert await burn("a") is True
        assert await burn("a") is False
        assert await burn("b") is True
        assert await burn("c", thumbprint="x" * 43) is False
        assert await burn("c", kid="k2") is False
        assert await burn("c", now=NOW - dt.timedelta(days=2)) is False
        set_status(PartnerStatus.suspended)
        assert await burn("c") is False
        set_status(PartnerStatus.active)
        assert await burn("c") is True
        with factory.begin() as session:
            partners_service.revoke_key(session, "WG", "k1", now=NOW)
        assert await burn("d", now=NOW + dt.timedelta(seconds=1)) is False
        with factory() as session:
            stored = session.execute(select(SeenJti.jti, SeenJti.expires_at).order_by(SeenJti.jti)).all()
        assert [(jti, expires_at) for jti, expires_at in stored] == [("a", LATER), ("b", LATER), ("c", LATER)]
        # Burns do not wait for the WAL flush (see PostgresJtiBurner).
        async with burner._pool.connection() as connection:
            cursor = await connection.execute("SHOW synchronous_commit")
            assert await cursor.fetchone() == ("off",)
    finally:
        await burner.close()


def test_request_transactions_still_wait_for_the_wal_flush(client: TestClient) -> None:
    """Request transactions (changes, audit events) wait for the flush; pure reads skip it by default."""
    state = client.app.state  # type: ignore[attr-defined]
    assert isinstance(state.jti_burner, PostgresJtiBurner)
    with state.session_factory() as work:
        assert work.execute(text("SHOW synchronous_commit")).scalar() == "on"
    # Pure reads (only audit events written) skip the wait by default (decision 0007).
    assert state.session_factory.kw["info"] == {READS_WAIT_FOR_FLUSH: False}
