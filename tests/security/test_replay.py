"""The replay cache's dialect-specific insert, on the embedded SQLite default as well as PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy.orm import Session

from app.core.db import make_engine, make_session_factory
from app.core.migrate import upgrade
from app.partners.models import Partner, PartnerKind
from app.security.replay import record_jti

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def _exercise(session: Session) -> None:
    session.add(
        Partner(id="WG", kind=PartnerKind.welsh_government, name="WG", is_pilot=False, created_at=NOW)
    )
    session.flush()
    later = NOW + dt.timedelta(minutes=5)
    assert record_jti(session, partner_id="WG", jti="a", expires_at=later, now=NOW) is True
    assert record_jti(session, partner_id="WG", jti="a", expires_at=later, now=NOW) is False
    assert record_jti(session, partner_id="WG", jti="b", expires_at=later, now=NOW) is True
    # Once expired, the row is purged and the jti could be stored again (its token's exp refuses it anyway).
    assert record_jti(
        session, partner_id="WG", jti="a", expires_at=later, now=later + dt.timedelta(seconds=1)
    )


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
