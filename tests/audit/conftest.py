"""Shared by the audit tests: a rogue superuser's session, and a few audit events to check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.audit import service as audit


@pytest.fixture
def superuser(engine: Engine) -> Iterator[Session]:
    """A connection that bypasses the append-only trigger, as a rogue superuser could."""
    # Bound to one connection: the SET is per connection, and a pooled session could get another one.
    with engine.connect() as connection:
        connection.execute(text("SET session_replication_role = replica"))
        connection.commit()
        with Session(bind=connection) as rogue:
            yield rogue
            rogue.rollback()
        # The connection goes back to the shared pool: no later test may run with the triggers off.
        connection.execute(text("RESET session_replication_role"))
        connection.commit()


def write_events(session: Session, count: int, *, at: dt.datetime) -> None:
    """`count` committed read events, one per transaction, as requests would write them."""
    for n in range(count):
        audit.record(
            session,
            actor=None,
            action="cme.record.read",
            object_type="cme_record",
            object_ids=[f"id-{n}"],
            now=at,
        )
        session.commit()
