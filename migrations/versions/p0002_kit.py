"""kit: phasegate's flags, rollout state and append-only rollout event log

Only new tables: takes no lock on anything the application uses.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "p0002_kit"
down_revision = "p0001_baseline"
branch_labels = None
depends_on = None
phase = "kit"

NOW = sa.text("now()")

APPEND_ONLY_FN = """
CREATE OR REPLACE FUNCTION phasegate_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "phasegate_flag",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_by", sa.Text, nullable=False, server_default="phasegate"),
        sa.PrimaryKeyConstraint("name", name="pk_phasegate_flag"),
    )
    op.create_table(
        "phasegate_rollout_state",
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rollout_id", sa.Text),
        sa.Column("direction", sa.Text),
        sa.Column("current_action", sa.Text),
        sa.Column("completed_actions", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("checkpoint", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("gate_results", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("actor", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("phase", name="pk_phasegate_rollout_state"),
    )
    op.create_table(
        "phasegate_rollout_event",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("rollout_id", sa.Text, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("action_id", sa.Text),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("detail", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_phasegate_rollout_event"),
    )
    op.create_index(
        "ix_phasegate_rollout_event_rollout_id_at", "phasegate_rollout_event", ["rollout_id", "at"]
    )
    op.execute(APPEND_ONLY_FN)
    op.execute(
        "CREATE TRIGGER phasegate_rollout_event_append_only BEFORE UPDATE OR DELETE "
        "ON phasegate_rollout_event FOR EACH ROW EXECUTE FUNCTION phasegate_append_only()"
    )


def downgrade() -> None:
    op.drop_table("phasegate_rollout_event")
    op.drop_table("phasegate_rollout_state")
    op.drop_table("phasegate_flag")
    op.execute("DROP FUNCTION IF EXISTS phasegate_append_only()")
