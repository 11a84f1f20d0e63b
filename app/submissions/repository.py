"""Every query on submissions and their rows. Bulk rows go through COPY on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
import psycopg
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.submissions.models import EducationChild, HealthChild, Submission

_CHUNK = 10_000
# COPY in chunks of this many rows; at most this many chunks wait for the writer (bounded memory).
_COPY_CHUNK_ROWS = 10_000
_COPY_QUEUE_CHUNKS = 3
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


def copy_text_supported(session: Session) -> bool:
    """Whether `insert_rows` takes rows as lines in PostgreSQL's COPY text format (see `insert_rows`)."""
    return session.get_bind().dialect.name == "postgresql"


def set_outcome(
    session: Session,
    submission_id: uuid.UUID,
    *,
    accepted: int,
    flagged: int,
    rejected: int,
    receipt: dict[str, Any],
    receipt_jws: str,
) -> None:
    """Record the fates counted and the signed receipt, once every record has been assessed."""
    session.execute(
        update(Submission)
        .where(Submission.id == submission_id)
        .values(
            accepted_count=accepted,
            flagged_count=flagged,
            rejected_count=rejected,
            receipt=receipt,
            receipt_jws=receipt_jws,
        )
    )


def insert_rows(
    session: Session,
    model: type[HealthChild] | type[EducationChild],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]] | Iterable[str],
) -> None:
    """Insert rows in the session's transaction: value tuples, or (PostgreSQL only) ready-made COPY lines.

    A line is one row in COPY text format, newline included, with every value already escaped; the
    caller vouches for that (`copy_text_supported`). On PostgreSQL the rows go out in chunks, one COPY
    statement each, from a writer thread while the caller's iterator builds the next chunk: the server's
    work on a chunk (parsing, index entries, the foreign-key checks that run when each COPY ends) overlaps
    the Python work of the next one. The caller's thread does not use the connection until all is sent.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None  # a checked-out connection always has its DBAPI connection
        statement = f"COPY {model.__tablename__} ({', '.join(columns)}) FROM STDIN"
        json_positions = [i for i, name in enumerate(columns) if name in JSON_COLUMNS]
        _copy_in_background(raw, statement, json_positions, iter(rows))
        return
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        if isinstance(chunk[0], str):
            raise TypeError("COPY lines need PostgreSQL; pass value tuples")
        session.execute(insert(model), [dict(zip(columns, row, strict=True)) for row in chunk])


def _copy_chunk(copy: psycopg.Copy, chunk: list[Any], json_positions: Sequence[int]) -> None:
    if isinstance(chunk[0], str):
        copy.write("".join(chunk))
        return
    for row in chunk:
        values = list(row)
        for i in json_positions:
            value = values[i]
            # Most children have no former names and no findings: skip the encoder for those.
            values[i] = orjson.dumps(value).decode() if value else "[]"
        copy.write_row(values)


def _copy_in_background(
    raw: psycopg.Connection[Any], statement: str, json_positions: Sequence[int], rows: Iterator[Any]
) -> None:
    chunks: queue.Queue[list[Any] | None] = queue.Queue(maxsize=_COPY_QUEUE_CHUNKS)
    stop = threading.Event()  # the producer failed: discard what is queued
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with raw.cursor() as cursor:
                while (chunk := chunks.get()) is not None:
                    if stop.is_set():
                        continue
                    with cursor.copy(statement) as copy:
                        _copy_chunk(copy, chunk, json_positions)
        except BaseException as exc:  # handed to the caller's thread, raised there
            failures.append(exc)
            while chunks.get() is not None:  # let the producer finish putting
                pass

    writer = threading.Thread(target=write, name="copy-writer", daemon=True)
    writer.start()
    try:
        while not failures and (chunk := list(itertools.islice(rows, _COPY_CHUNK_ROWS))):
            chunks.put(chunk)
    except BaseException:
        stop.set()
        raise
    finally:
        chunks.put(None)
        writer.join()
    if failures:
        raise failures[0]


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
