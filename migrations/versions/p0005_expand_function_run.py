"""expand: background_function_run, the per-attempt run ledger, with its triage indexes

A new, empty table: indexes and the CHECK are created with it in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "p0005_expand_function_run"
down_revision = "p0004_expand_dispatch_window"
branch_labels = None
depends_on = None
phase = "expand"

NOW = sa.text("now()")
run_status = pg.ENUM(name="background_function_run_status", create_type=False)
error_class = pg.ENUM(name="background_error_class", create_type=False)
T = "background_function_run"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("run_key", sa.Text, nullable=False),
        sa.Column("function_name", sa.Text, nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("dispatch_key", sa.Text),
        sa.Column("correlation_id", sa.Text),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("status", run_status, nullable=False, server_default="RUNNING"),
        sa.Column("error_class", error_class),
        sa.Column("terminal_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_background_function_run"),
        sa.UniqueConstraint("run_key", name="uq_background_function_run_run_key"),
        # op.f(): the name is final; the MetaData naming convention would prefix it again.
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_background_function_run_attempt_positive")),
    )
    op.create_index(
        "ix_background_function_run_function_status_requested", T,
        ["function_name", "status", "requested_at"],
    )
    op.create_index("ix_background_function_run_dispatch_key", T, ["dispatch_key"])
    op.create_index("ix_background_function_run_run_id", T, ["run_id"])
    op.create_index("ix_background_function_run_requested_at", T, ["requested_at"])
    op.create_index(
        "ix_background_function_run_running", T, ["started_at"],
        postgresql_where=sa.text("status = 'RUNNING'"),
    )
    op.create_index(
        "ix_background_function_run_failed", T, ["error_class", "finished_at"],
        postgresql_where=sa.text("status = 'FAILED'"),
    )


def downgrade() -> None:
    op.drop_table(T)
