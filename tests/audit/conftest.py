"""A rogue superuser's session, shared by the tamper tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session


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
