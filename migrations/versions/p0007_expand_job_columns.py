"""expand: correlation_id and dispatch_key on background_job

Nullable columns without a default are a catalog-only change, but ALTER TABLE still needs
ACCESS EXCLUSIVE for an instant: taken under lock_timeout, retried with backoff.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0007_expand_job_columns"
down_revision = "p0006_expand_dead_letter_audit"
branch_labels = None
depends_on = None
phase = "expand"


def upgrade() -> None:
    safe_ddl.execute(
        "ALTER TABLE background_job ADD COLUMN IF NOT EXISTS correlation_id text, "
        "ADD COLUMN IF NOT EXISTS dispatch_key text",
        what="add background_job.correlation_id, dispatch_key",
    )


def downgrade() -> None:
    safe_ddl.execute(
        "ALTER TABLE background_job DROP COLUMN IF EXISTS dispatch_key, "
        "DROP COLUMN IF EXISTS correlation_id",
        what="drop background_job.correlation_id, dispatch_key",
    )
