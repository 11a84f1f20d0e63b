"""matching rounds: match_period, match_run.period/round_id, match_outcome.other_registrations, job.stage;
match_outcome keeps only the indexes its queries use (the review queue's partial);
cme_candidate indexed by submission; match_outcome.evidence json (not jsonb)

Revision ID: 5e2a7c91d4b3
Revises: 3c8f1d2e9a70
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

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
        # A round writes one outcome per health row: every index costs it time. Nothing looks outcomes up by
        # run or by staging row, and only possible matches are reviewed.
        batch.drop_index("ix_match_outcome_run_id")
        batch.drop_index("ix_match_outcome_health_child_id")
        batch.drop_index("ix_match_outcome_review_queue")
        batch.create_index(
            "ix_match_outcome_review_queue",
            ["recipient_la", "review_status", "created_at", "id"],
            postgresql_where=sa.text("review_status IS NOT NULL"),
            sqlite_where=sa.text("review_status IS NOT NULL"),
        )
        batch.create_index(
            "ix_match_outcome_dual_registrations",
            ["recipient_la", "created_at", "id"],
            postgresql_where=sa.text("other_registrations IS NOT NULL"),
            sqlite_where=sa.text("other_registrations IS NOT NULL"),
        )
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("stage", sa.String(length=32), nullable=True))
    op.create_index("ix_cme_candidate_submission_id", "cme_candidate", ["submission_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "match_outcome", "evidence", type_=sa.JSON(), postgresql_using="evidence::json", existing_nullable=False
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "match_outcome",
            "evidence",
            type_=postgresql.JSONB(),
            postgresql_using="evidence::jsonb",
            existing_nullable=False,
        )
    op.drop_index("ix_cme_candidate_submission_id", table_name="cme_candidate")
    with op.batch_alter_table("job") as batch:
        batch.drop_column("stage")
    with op.batch_alter_table("match_outcome") as batch:
        batch.drop_index("ix_match_outcome_dual_registrations")
        batch.drop_index("ix_match_outcome_review_queue")
        batch.create_index(
            "ix_match_outcome_review_queue", ["recipient_la", "review_status", "created_at", "id"]
        )
        batch.create_index("ix_match_outcome_health_child_id", ["health_child_id"])
        batch.create_index("ix_match_outcome_run_id", ["run_id"])
        batch.drop_column("other_registrations")
    with op.batch_alter_table("match_run") as batch:
        batch.drop_index(op.f("ix_match_run_period"))
        batch.drop_column("round_id")
        batch.drop_column("period")
    op.drop_table("match_period")
