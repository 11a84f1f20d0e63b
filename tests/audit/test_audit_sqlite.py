"""The embedded SQLite deployment: the migrations build the audit table there too, append-only, chained."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit import service as audit
from app.core.db import make_engine, make_session_factory
from app.core.migrate import downgrade, upgrade

AT = dt.datetime(2025, 10, 6, 9, 30, tzinfo=dt.UTC)


def test_sqlite_chain_is_written_verified_and_append_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cme.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            for n in range(3):
                audit.record(session, actor=None, action="cme.record.surface_due", object_type="cme_record",
                             object_ids=[f"id-{n}"], purpose="reg6_11_removal", now=AT)  # fmt: skip
            session.commit()
            assert audit.verify_chain(session).checked == 3
            assert [e.seq for e in audit.events_naming(session, ["id-1"])] == [2]
            for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
                with pytest.raises(DBAPIError, match="append-only"):
                    session.execute(text(statement))
                session.rollback()
            assert audit.verify_chain(session).ok
    finally:
        engine.dispose()
    downgrade(url, "base")
