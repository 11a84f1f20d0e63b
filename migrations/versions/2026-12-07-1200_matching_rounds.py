"""matching rounds: match_period, match_run.period/round_id, match_outcome.other_registrations, job.stage

Revision ID: 5e2a7c91d4b3
Revises: 3c8f1d2e9a70
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "5e2a7c91d4b3"
down_revision: str | None = "3c8f1d2e9a70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "match_period",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("round_job_id", sa.Uuid(), nullable=True),
        sa.Column("round_claimed_at", app.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_match_period")),
    )
    with op.batch_alter_table("match_run") as batch:
        batch.add_column(sa.Column("period", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("round_id", sa.Uuid(), nullable=True))
        batch.create_index(op.f("ix_match_run_period"), ["period"])
    with op.batch_alter_table("match_outcome") as batch:
        batch.add_column(sa.Column("other_registrations", app.core.db.JSONType, nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job") as batch:
        batch.drop_column("stage")
    with op.batch_alter_table("match_outcome") as batch:
        batch.drop_column("other_registrations")
    with op.batch_alter_table("match_run") as batch:
        batch.drop_index(op.f("ix_match_run_period"))
        batch.drop_column("round_id")
        batch.drop_column("period")
    op.drop_table("match_period")
