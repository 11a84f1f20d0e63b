"""partners, partner keys and the bearer-token replay cache

Revision ID: 0001
Revises:
Create Date: 2026-11-25 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.String(length=16), nullable=False),
        # Enums are stored as plain strings (no database enum type), see app/partners/models.py.
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_pilot", sa.Boolean(), nullable=False),
        sa.Column("area_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["area_id"], ["partner.id"], name=op.f("fk_partner_area_id_partner")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
    )
    op.create_table(
        "partner_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.String(length=16), nullable=False),
        sa.Column("kid", sa.String(length=128), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("kty", sa.String(length=8), nullable=False),
        sa.Column("crv", sa.String(length=16), nullable=True),
        sa.Column("public_jwk", app.core.db.JSONType, nullable=False),
        sa.Column("thumbprint", sa.String(length=64), nullable=False),
        sa.Column("not_before", app.core.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", app.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", app.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"], name=op.f("fk_partner_key_partner_id_partner")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_key")),
        sa.UniqueConstraint("partner_id", "kid", name=op.f("uq_partner_key_partner_id_kid")),
    )
    op.create_table(
        "seen_jti",
        sa.Column("partner_id", sa.String(length=16), nullable=False),
        sa.Column("jti", sa.String(length=36), nullable=False),
        sa.Column("expires_at", app.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"], name=op.f("fk_seen_jti_partner_id_partner")),
        sa.PrimaryKeyConstraint("partner_id", "jti", name=op.f("pk_seen_jti")),
    )
    op.create_index("ix_seen_jti_expires_at", "seen_jti", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_seen_jti_expires_at", table_name="seen_jti")
    op.drop_table("seen_jti")
    op.drop_table("partner_key")
    op.drop_table("partner")
