"""cme erasure stubs

Revision ID: 5b0d2e7c91a4
Revises: c3e7a1f04b2d
Create Date: 2026-11-25 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b0d2e7c91a4"
down_revision: str | None = "c3e7a1f04b2d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a column in place.
    with op.batch_alter_table("cme_record_stub") as batch:
        batch.alter_column("regulation", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # Erasure stubs have no regulation; 0 marks them so the NOT NULL column can come back.
    op.execute(sa.text("UPDATE cme_record_stub SET regulation = 0 WHERE regulation IS NULL"))
    with op.batch_alter_table("cme_record_stub") as batch:
        batch.drop_column("reason")
        batch.alter_column("regulation", existing_type=sa.Integer(), nullable=False)
