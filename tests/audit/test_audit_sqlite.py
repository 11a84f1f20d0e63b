"""The embedded SQLite deployment: the migrations build the audit table there too, append-only, chained."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError

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


def test_sqlite_writer_that_only_read_cannot_append_after_a_stale_head(tmp_path: Path) -> None:
    """A transaction whose only write is its audit event takes the write lock before it reads the chain's
    head: another writer cannot commit in between (it waits), so the two never both append event n+1."""
    url = f"sqlite:///{tmp_path / 'cme.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    try:
        first, second = factory(), factory()
        second.execute(text("PRAGMA busy_timeout=100"))
        audit.record(first, actor=None, action="cme.candidate.list", object_type="cme_candidate",
                     object_ids=[], purpose="reg3_identification", now=AT)  # fmt: skip
        audit.record(second, actor=None, action="cme.candidate.list", object_type="cme_candidate",
                     object_ids=[], purpose="reg3_identification", now=AT)  # fmt: skip
        interleaved: list[str] = []

        def commit_the_other_first(conn: object, cursor: object, statement: str, *args: object) -> None:
            if statement.startswith("INSERT INTO audit_event") and not interleaved:
                try:
                    second.commit()
                    interleaved.append("committed in between")
                except OperationalError:
                    second.rollback()
                    interleaved.append("waited")

        event.listen(first.connection(), "before_cursor_execute", commit_the_other_first)
        first.commit()
        assert interleaved == ["waited"]
        with factory() as session:
            assert audit.verify_chain(session).checked == 1
        first.close()
        second.close()
    finally:
        engine.dispose()
