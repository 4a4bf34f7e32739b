"""expand: partial claim and lease indexes on background_job, built CONCURRENTLY

background_job is live and busy: a plain CREATE INDEX would block every insert for the
whole build. CONCURRENTLY runs outside the revision's transaction.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0008_expand_job_indexes"
down_revision = "p0007_expand_job_columns"
branch_labels = None
depends_on = None
phase = "expand"
long_running = True  # CREATE INDEX CONCURRENTLY scans the table: the crash matrix kills it mid-way


def upgrade() -> None:
    safe_ddl.create_index_concurrently(
        "ix_background_job_claimable", "background_job", "run_at", where="status = 'PENDING'"
    )
    safe_ddl.create_index_concurrently(
        "ix_background_job_running_lease", "background_job", "locked_at",
        where="status = 'RUNNING'",
    )


def downgrade() -> None:
    safe_ddl.drop_index_concurrently("ix_background_job_running_lease")
    safe_ddl.drop_index_concurrently("ix_background_job_claimable")
