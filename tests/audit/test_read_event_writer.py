"""Read-audit events appended on their own (no request transaction to ride on): from the event loop on
PostgreSQL, through a session on SQLite; the one hash chain either way."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.core.db import make_engine, make_session_factory
from app.core.migrate import upgrade
from tests.audit.test_audit_chain import AT, OFFICER


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _read(n: int) -> audit.PendingEvent:
    return audit.new_event(
        actor=OFFICER, action="matching.realtime.query", object_type="education_child", object_ids=[n],
        purpose="reg3_identification", now=AT + dt.timedelta(seconds=n),
    )  # fmt: skip


def _actions_and_ids(session: Session) -> list[tuple[int, str, list[str]]]:
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.action, AuditEvent.object_ids).order_by(AuditEvent.seq)
    )
    return [(seq, action, ids) for seq, action, ids in rows]


@pytest.mark.anyio
async def test_postgresql_events_from_the_loop_chain_with_transactional_ones(
    database_url: str, engine: Engine
) -> None:
    writer = audit.read_event_writer(
        database_url, make_session_factory(engine), max_connections=4, reads_wait_for_flush=False
    )
    assert isinstance(writer, audit.PostgresReadEventWriter)
    await writer.open()
    try:
        await writer.append([_read(1), _read(2)])
        with make_session_factory(engine).begin() as session:  # a request's own transaction in between
            audit.record(
                session, actor=OFFICER, action="cme.record.read", object_type="cme_record", object_ids=["r"]
            )
        # Concurrent appends from the loop serialise on the chain's lock.
        await asyncio.gather(*(writer.append([_read(n)]) for n in range(3, 11)))
    finally:
        await writer.close()
    with Session(engine) as session:
        events = _actions_and_ids(session)
        assert [seq for seq, _, _ in events] == list(range(1, 12))
        assert events[:3] == [
            (1, "matching.realtime.query", ["1"]), (2, "matching.realtime.query", ["2"]), (3, "cme.record.read", ["r"])
        ]  # fmt: skip
        assert sorted(ids[0] for _, _, ids in events[3:]) == sorted(str(n) for n in range(3, 11))
        verification = audit.verify_chain(session)
        assert verification.ok and verification.checked == 11


@pytest.mark.anyio
async def test_a_failed_append_leaves_no_event_and_the_connection_usable(
    database_url: str, engine: Engine
) -> None:
    writer = audit.PostgresReadEventWriter(database_url, max_connections=1, reads_wait_for_flush=True)
    await writer.open()
    try:
        broken = _read(1)
        broken.action = "x" * 10_000  # longer than the column allows: the insert fails inside the transaction
        with pytest.raises(Exception, match="too long"):
            await writer.append([_read(0), broken])
        await writer.append([_read(2)])  # the same (only) connection, rolled back and reusable
    finally:
        await writer.close()
    with Session(engine) as session:
        assert _actions_and_ids(session) == [(1, "matching.realtime.query", ["2"])]
        assert audit.verify_chain(session).ok


@pytest.mark.anyio
async def test_sqlite_events_go_through_a_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    upgrade(url)
    engine = make_engine(url)
    try:
        writer = audit.read_event_writer(
            url, make_session_factory(engine), max_connections=1, reads_wait_for_flush=False
        )
        assert isinstance(writer, audit.SessionReadEventWriter)
        await writer.open()
        await writer.append([_read(1)])
        await writer.append([_read(2), _read(3)])
        await writer.close()
        with Session(engine) as session:
            assert [ids for _, _, ids in _actions_and_ids(session)] == [["1"], ["2"], ["3"]]
            assert audit.verify_chain(session).ok
            assert session.execute(text("SELECT count(*) FROM audit_event")).scalar() == 3
    finally:
        engine.dispose()
