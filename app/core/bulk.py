"""Bulk inserts in the session's transaction: COPY on PostgreSQL, one executemany on SQLite.

A matching round writes hundreds of thousands of rows; row-by-row INSERTs (even batched) cost about 70 us a
row on PostgreSQL, COPY a fraction of that.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import polars as pl
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Table, Uuid, insert
from sqlalchemy.orm import Session

from app.core.db import UTCDateTime


def _raw(session: Session) -> Any:
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return None
    raw = connection.connection.driver_connection
    assert raw is not None  # a checked-out connection always has its DBAPI connection
    return raw


def _json_columns(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, JSON))


def insert_dicts(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows given as dicts (every row with the same keys)."""
    if not rows:
        return
    raw = _raw(session)
    if raw is None:
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    json_columns = _json_columns(table)
    wrap = [name in json_columns for name in columns]
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    Jsonb(value) if wrapped and value is not None else value
                    for value, wrapped in zip(row.values(), wrap, strict=True)
                ]
            )


def insert_frame(session: Session, table: Table, frame: pl.DataFrame) -> None:
    """Insert a frame whose columns are the table's: JSON columns hold JSON text, uuids and timestamps ISO
    text (as CSV carries them); nulls are nulls, and no text column holds an empty string."""
    if not frame.height:
        return
    raw = _raw(session)
    if raw is None:
        session.execute(insert(table), _typed_rows(table, frame))
        return
    statement = f"COPY {table.name} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)"
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(frame.write_csv(include_header=False))


def _typed_rows(table: Table, frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows with the Python values SQLAlchemy's column types take (SQLite)."""
    convert: dict[str, Any] = {}
    for name in frame.columns:
        kind = table.columns[name].type
        if isinstance(kind, JSON):
            convert[name] = orjson.loads
        elif isinstance(kind, Uuid):
            convert[name] = uuid.UUID
        elif isinstance(kind, UTCDateTime):
            convert[name] = dt.datetime.fromisoformat
    return [
        {k: (convert[k](v) if v is not None and k in convert else v) for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]
