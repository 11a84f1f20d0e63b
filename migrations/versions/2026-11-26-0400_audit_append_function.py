"""audit_append: the hash chain's lock and chained inserts as one server function (PostgreSQL)

Revision ID: 7f3a9c2d5e61
Revises: 5b0d2e7c91a4
Create Date: 2026-11-26 04:00:00

The statements the service sent for every audited transaction (take the chain's advisory lock, then one
INSERT ... SELECT per event reading the head just written), planned afresh each time because their values
were inlined, now run inside a PL/pgSQL function whose plans the server keeps per connection. Events come
as parallel arrays, appended in order; `p_skip_flush` lets a transaction that has written nothing else
skip the WAL flush wait (decision 0007). Each INSERT takes its snapshot after the lock, as before.
SQLite keeps hashing in the service.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7f3a9c2d5e61"
down_revision: str | None = "5b0d2e7c91a4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SIGNATURE = (
    "audit_append(timestamptz[], text[], text[], text[], text[], text[], text[], jsonb[], text[], text[], boolean)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
CREATE FUNCTION audit_append(
    p_occurred_at timestamptz[], p_partner_id text[], p_officer_id text[], p_role text[], p_action text[],
    p_purpose text[], p_object_type text[], p_object_ids jsonb[], p_request_id text[], p_prefix text[],
    p_skip_flush boolean
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_skip_flush AND pg_current_xact_id_if_assigned() IS NULL THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    PERFORM pg_advisory_xact_lock(73999153452356);  -- the chain's lock key: "CMEAUD" in ASCII, as before
    FOR i IN 1 .. coalesce(array_length(p_action, 1), 0) LOOP
        INSERT INTO audit_event (seq, occurred_at, partner_id, officer_id, role, action, purpose, object_type,
                                 object_ids, request_id, prev_hash, hash)
        SELECT head.seq + 1, p_occurred_at[i], p_partner_id[i], p_officer_id[i], p_role[i], p_action[i],
               p_purpose[i], p_object_type[i], p_object_ids[i], p_request_id[i], head.hash,
               encode(sha256(convert_to(head.hash || p_prefix[i] || (head.seq + 1)::text || '}', 'UTF8')), 'hex')
        FROM ((SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1)
              UNION ALL SELECT 0, repeat('0', 64)) AS head
        ORDER BY head.seq DESC LIMIT 1;
    END LOOP;
END $$
"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
