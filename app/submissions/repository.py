"""Every query on submissions and their rows. Bulk rows go through COPY on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.submissions.models import EducationChild, HealthChild, Submission

_CHUNK = 10_000
JSON_COLUMNS = frozenset({"former_names", "address_lines", "flags"})


def get_submission(session: Session, submission_id: uuid.UUID) -> Submission | None:
    return session.get(Submission, submission_id)


def insert_submission_if_absent(session: Session, values: dict[str, Any]) -> bool:
    """Insert unless the id exists; a concurrent insert of the same id waits for the other to finish."""
    dialect = session.get_bind().dialect.name
    stmt_module = postgresql if dialect == "postgresql" else sqlite
    stmt = stmt_module.insert(Submission).values(**values).on_conflict_do_nothing(index_elements=["id"])
    result = session.execute(stmt.returning(Submission.id))
    return result.first() is not None


def set_job(session: Session, submission_id: uuid.UUID, job_id: uuid.UUID) -> None:
    session.execute(update(Submission).where(Submission.id == submission_id).values(job_id=job_id))


def insert_rows(
    session: Session,
    model: type[HealthChild] | type[EducationChild],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
) -> None:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None  # a checked-out connection always has its DBAPI connection
        column_list = ", ".join(columns)
        json_positions = [i for i, name in enumerate(columns) if name in JSON_COLUMNS]
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {model.__tablename__} ({column_list}) FROM STDIN") as copy,
        ):
            for row in rows:
                values = list(row)
                for i in json_positions:
                    value = values[i]
                    # Most children have no former names and no findings: skip the encoder for those.
                    values[i] = orjson.dumps(value).decode() if value else "[]"
                copy.write_row(values)
        return
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in chunk])


def supersede_register(
    session: Session, *, sender_id: str, kind: str, scope: str | None, keep_id: uuid.UUID, now: dt.datetime
) -> int:
    """Drop the rows of the sender's older snapshots of this register; returns how many submissions."""
    older = select(Submission.id).where(
        Submission.sender_id == sender_id,
        Submission.kind == kind,
        Submission.scope.is_(None) if scope is None else Submission.scope == scope,
        Submission.id != keep_id,
        Submission.superseded_at.is_(None),
    )
    ids = list(session.scalars(older))
    if not ids:
        return 0
    session.execute(delete(EducationChild).where(EducationChild.submission_id.in_(ids)))
    session.execute(update(Submission).where(Submission.id.in_(ids)).values(superseded_at=now))
    return len(ids)
