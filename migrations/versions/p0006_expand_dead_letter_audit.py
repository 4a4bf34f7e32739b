"""expand: dead letters, effect keys and the append-only operator audit

New tables only. The dead letter's foreign key to background_job is added NOT VALID in
p0009, because creating it here would take SHARE ROW EXCLUSIVE on background_job and
block the application's inserts while waiting for the lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "p0006_expand_dead_letter_audit"
down_revision = "p0005_expand_function_run"
branch_labels = None
depends_on = None
phase = "expand"

NOW = sa.text("now()")
error_class = pg.ENUM(name="background_error_class", create_type=False)
dl_status = pg.ENUM(name="background_dead_letter_status", create_type=False)
JSON_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    op.create_table(
        "background_dead_letter",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("job_id", sa.BigInteger, nullable=False),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False, server_default=JSON_EMPTY),
        sa.Column("error_class", error_class, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("correlation_id", sa.Text),
        sa.Column("status", dl_status, nullable=False, server_default="OPEN"),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolution_reason", sa.Text),
        sa.Column("requeued_job_id", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_background_dead_letter"),
    )
    op.create_index(
        "uq_background_dead_letter_open_job", "background_dead_letter", ["job_id"], unique=True,
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.create_index(
        "ix_background_dead_letter_open", "background_dead_letter", ["job_type", "dead_at"],
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.create_table(
        "background_job_effect",
        sa.Column("effect_key", sa.Text, nullable=False),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("run_key", sa.Text),
        sa.Column("result", pg.JSONB),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("effect_key", name="pk_background_job_effect"),
    )
    op.create_table(
        "background_operator_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("operator", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target_kind", sa.Text, nullable=False),
        sa.Column("target_id", sa.Text),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("detail", pg.JSONB, nullable=False, server_default=JSON_EMPTY),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_background_operator_audit"),
    )
    op.create_index(
        "ix_background_operator_audit_target", "background_operator_audit",
        ["target_kind", "target_id"],
    )
    op.execute(
        "CREATE TRIGGER background_operator_audit_append_only BEFORE UPDATE OR DELETE "
        "ON background_operator_audit FOR EACH ROW EXECUTE FUNCTION phasegate_append_only()"
    )


def downgrade() -> None:
    op.drop_table("background_operator_audit")
    op.drop_table("background_job_effect")
    op.drop_table("background_dead_letter")
