"""subject access requests: extension and answer

Revision ID: 9d4e6b1a2c37
Revises: 7f3a9c2d5e61
Create Date: 2026-11-26 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d4e6b1a2c37"
down_revision: str | None = "7f3a9c2d5e61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cme_subject_access_request") as batch:
        batch.add_column(sa.Column("extended_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("extension_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("answered_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("answered_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cme_subject_access_request") as batch:
        batch.drop_column("answered_by")
        batch.drop_column("answered_on")
        batch.drop_column("extension_reason")
        batch.drop_column("extended_on")
