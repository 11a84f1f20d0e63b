"""Every table has a migration: upgrade, downgrade to base, upgrade again, then models == schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.core.db import made_on, make_engine
from app.core.migrate import alembic_config, downgrade, upgrade
from app.wiring.models import metadata
from tests.conftest import ADMIN_DSN, _admin_execute


@pytest.fixture
def scratch_database_url() -> Iterator[str]:
    name = f"cme_migr_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": made_on(conn.dialect.name)}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_downgrade_upgrade_on_postgres_matches_models(scratch_database_url: str) -> None:
    upgrade(scratch_database_url)
    downgrade(scratch_database_url, "base")
    engine = make_engine(scratch_database_url)
    try:
        leftover = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert leftover == set()
    upgrade(scratch_database_url)
    assert _schema_diff(scratch_database_url) == []
    engine = make_engine(scratch_database_url)
    try:
        assert {t.name for t in metadata.sorted_tables} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrations_run_on_the_embedded_sqlite_default(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/cme.db"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    assert _schema_diff(url) == []
