"""expand: index background_dead_letter.job_id, built CONCURRENTLY

The foreign key to background_job and the backfill's "does this job already have a dead
letter?" test both look dead letters up by job_id. Without this index each backfill batch
hashes every dead letter (quadratic over a 10M-job history) and every DELETE on
background_job scans the dead letters for references.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0012_expand_dead_letter_job_ix"
down_revision = "p0011_expand_grants"
branch_labels = None
depends_on = None
phase = "expand"
long_running = True  # CREATE INDEX CONCURRENTLY scans the table: the crash matrix kills it mid-way


def upgrade() -> None:
    safe_ddl.create_index_concurrently(
        "ix_background_dead_letter_job_id", "background_dead_letter", "job_id"
    )


def downgrade() -> None:
    safe_ddl.drop_index_concurrently("ix_background_dead_letter_job_id")
