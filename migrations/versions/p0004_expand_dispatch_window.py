"""expand: background_dispatch_window, the dedupe record of cron-to-queue sends

A new, empty table: its indexes are built in the same transaction without CONCURRENTLY,
which is safe because no other session can see the table yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "p0004_expand_dispatch_window"
down_revision = "p0003_expand_enums"
branch_labels = None
depends_on = None
phase = "expand"

NOW = sa.text("now()")
dispatch_status = pg.ENUM(name="background_dispatch_status", create_type=False)


def upgrade() -> None:
    op.create_table(
        "background_dispatch_window",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("dispatch_key", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text),
        sa.Column("status", dispatch_status, nullable=False, server_default="DISPATCHING"),
        sa.Column("failure_message", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_background_dispatch_window"),
        sa.UniqueConstraint("dispatch_key", name="uq_background_dispatch_window_dispatch_key"),
    )
    op.create_index(
        "ix_background_dispatch_window_status_window_start",
        "background_dispatch_window", ["status", "window_start"],
    )
    op.create_index(
        "ix_background_dispatch_window_window_end", "background_dispatch_window", ["window_end"]
    )
    op.create_index(
        "ix_background_dispatch_window_dispatching", "background_dispatch_window", ["created_at"],
        postgresql_where=sa.text("status = 'DISPATCHING'"),
    )


def downgrade() -> None:
    op.drop_table("background_dispatch_window")
