"""expand: a job is the requeue of at most one dead letter (unique requeued_job_id), CONCURRENTLY

The state machine of p0014 sets ``requeued_job_id`` once per letter, through the one function
that creates the job; this index makes the other direction a constraint too, whoever writes
the row. Partial (``IS NOT NULL``): most letters are never requeued. Its own revision because
an index on a live table is built CONCURRENTLY, outside p0014's single transaction; and
before p0014, so that p0014 is the last expand revision: its downgrade is the one that may
refuse (ownership, see p0014), and a refusal then comes before anything was undone.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0013_expand_requeued_job_ux"
down_revision = "p0012_expand_dead_letter_job_ix"
branch_labels = None
depends_on = None
phase = "expand"
long_running = True  # CREATE INDEX CONCURRENTLY scans the table: the crash matrix kills it mid-way

INDEX = "uq_background_dead_letter_requeued_job_id"


def upgrade() -> None:
    safe_ddl.create_index_concurrently(INDEX, "background_dead_letter", "requeued_job_id",
                                       unique=True, where="requeued_job_id IS NOT NULL")


def downgrade() -> None:
    safe_ddl.drop_index_concurrently(INDEX)
