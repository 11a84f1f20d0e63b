"""Replay cache for bearer tokens, shared by every process through the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Executable, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.security.models import SeenJti


def record_jti(
    session: Session, *, partner_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime
) -> bool:
    """Remember `jti` for `partner_id` until `expires_at`; False if it was already seen (a replay).

    Rows past their expiry are purged on the way: by then the token's own time check refuses it.
    """
    session.execute(delete(SeenJti).where(SeenJti.partner_id == partner_id, SeenJti.expires_at < now))
    values = {"partner_id": partner_id, "jti": jti, "expires_at": expires_at}
    statement = _insert_unless_present(session.get_bind().dialect.name, values)
    # RETURNING yields the row only when it was inserted (rowcount is not reliable on the ORM path).
    return session.execute(statement).first() is not None


def _insert_unless_present(dialect: str, values: dict[str, object]) -> Executable:
    """INSERT ... ON CONFLICT (partner_id, jti) DO NOTHING, in each dialect we run on."""
    conflict = ["partner_id", "jti"]
    if dialect == "postgresql":
        return (
            postgresql.insert(SeenJti)
            .values(values)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(SeenJti.jti)
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(SeenJti)
            .values(values)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(SeenJti.jti)
        )
    raise NotImplementedError(f"no replay cache insert for dialect {dialect}")
