"""cme erasure stubs and subject access requests

Revision ID: 5b0d2e7c91a4
Revises: c3e7a1f04b2d
Create Date: 2026-11-25 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "5b0d2e7c91a4"
down_revision: str | None = "c3e7a1f04b2d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cme_subject_access_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("la_id", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("warn_from", sa.Date(), nullable=False),
        sa.Column("extended_due_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cme_subject_access_request")),
    )
    op.create_index(
        "ix_cme_subject_access_request_la_id_due_on",
        "cme_subject_access_request",
        ["la_id", "due_on"],
        unique=False,
    )
    # Batch mode: SQLite cannot alter a column in place.
    with op.batch_alter_table("cme_record_stub") as batch:
        batch.alter_column("regulation", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_index("ix_cme_subject_access_request_la_id_due_on", table_name="cme_subject_access_request")
    op.drop_table("cme_subject_access_request")
    # Erasure stubs have no regulation; 0 marks them so the NOT NULL column can come back.
    op.execute(sa.text("UPDATE cme_record_stub SET regulation = 0 WHERE regulation IS NULL"))
    with op.batch_alter_table("cme_record_stub") as batch:
        batch.drop_column("reason")
        batch.alter_column("regulation", existing_type=sa.Integer(), nullable=False)
