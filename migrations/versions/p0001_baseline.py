"""baseline: the application's queue table as it exists before any rollout

phasegate creates this only for tests and the demo; on a real target it already exists and
the rollout stamps it (``rollout.migrate.adopt_baseline``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from migrations.safe_ddl import IrreversibleMigration

revision = "p0001_baseline"
down_revision = None
branch_labels = None
depends_on = None
phase = "baseline"

job_status = pg.ENUM(
    "PENDING", "RUNNING", "SUCCEEDED", "FAILED", name="background_job_status", create_type=False
)


def upgrade() -> None:
    job_status.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "background_job",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("status", job_status, nullable=False, server_default="PENDING"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="5"),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("locked_at", sa.DateTime(timezone=True)),
        sa.Column("locked_by", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("id", name="pk_background_job"),
    )
    op.create_index("ix_background_job_status_run_at", "background_job", ["status", "run_at"])


def downgrade() -> None:
    raise IrreversibleMigration(
        "p0001_baseline is the application's own table; phasegate never drops it"
    )
