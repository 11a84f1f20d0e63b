"""audit_event: GIN index on object_ids (PostgreSQL)

Revision ID: 3c8f1d2e9a70
Revises: 0b79d842f4f8
Create Date: 2026-11-26 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c8f1d2e9a70"
down_revision: str | None = "0b79d842f4f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL only: the embedded SQLite default scans, as the access-log query there does.
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_audit_event_object_ids",
            "audit_event",
            ["object_ids"],
            postgresql_using="gin",
            postgresql_ops={"object_ids": "jsonb_path_ops"},
            postgresql_with={"fastupdate": "off"},
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_audit_event_object_ids", table_name="audit_event")
