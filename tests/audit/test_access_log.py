"""The access log of a subject-access export: every event naming an id, found through the GIN index."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.audit import service as audit

AT = dt.datetime(2025, 10, 6, 9, 0, tzinfo=dt.UTC)


def _record(session: Session, ids: list[str]) -> None:
    audit.record(
        session, actor=None, action="cme.record.read", object_type="cme_record", object_ids=ids, now=AT
    )
    session.commit()


def test_events_naming_an_id_are_found_oldest_first_and_no_others(session: Session) -> None:
    _record(session, ["a1", "b2"])
    _record(session, ["c3"])
    _record(session, ["b2"])
    _record(session, ["b22"])  # a longer id that contains the asked one is not it
    found = audit.events_naming(session, ["b2"])
    assert [event.object_ids for event in found] == [["a1", "b2"], ["b2"]]
    assert [event.object_ids for event in audit.events_naming(session, ["c3", "a1"])] == [
        ["a1", "b2"],
        ["c3"],
    ]
    assert audit.events_naming(session, []) == []


def test_the_query_can_use_the_gin_index(session: Session) -> None:
    """The containment test reaches `object_ids` as it is indexed (a cast would hide it from the index),
    and PostgreSQL answers that shape of query from the index."""
    _record(session, ["a1"])
    sql = str(audit.events_naming_statement(session, ["a1", "b2"]).compile(session.get_bind()))
    assert sql.count("audit_event.object_ids @> ") == 2 and "CAST" not in sql, sql
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        row[0]
        for row in session.execute(
            text(
                "EXPLAIN SELECT seq FROM audit_event WHERE object_ids @> '[\"a1\"]' OR object_ids @> '[\"b2\"]'"
            )
        )
    )
    assert "ix_audit_event_object_ids" in plan, plan
