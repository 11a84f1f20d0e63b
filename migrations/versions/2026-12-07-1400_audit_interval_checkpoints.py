"""audit interval checkpoints: the audit chain's head signed every few minutes

Revision ID: 8c1f4a7e2b90
Revises: 5e2a7c91d4b3
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "8c1f4a7e2b90"
down_revision: str | None = "5e2a7c91d4b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_interval_checkpoint",
        sa.Column("signed_at", app.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("jws", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("signed_at", name=op.f("pk_audit_interval_checkpoint")),
    )


def downgrade() -> None:
    op.drop_table("audit_interval_checkpoint")
