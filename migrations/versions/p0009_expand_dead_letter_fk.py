"""expand: dead letter -> background_job foreign key, NOT VALID then VALIDATE

ADD ... NOT VALID needs SHARE ROW EXCLUSIVE on both tables only for an instant (under
lock_timeout); VALIDATE takes SHARE UPDATE EXCLUSIVE, which lets inserts and updates go on.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0009_expand_dead_letter_fk"
down_revision = "p0008_expand_job_indexes"
branch_labels = None
depends_on = None
phase = "expand"

FK = "fk_background_dead_letter_job_id_background_job"


def upgrade() -> None:
    safe_ddl.add_constraint_not_valid(
        "background_dead_letter", FK, "FOREIGN KEY (job_id) REFERENCES background_job (id)"
    )
    safe_ddl.validate_constraint("background_dead_letter", FK)


def downgrade() -> None:
    safe_ddl.execute(
        f"ALTER TABLE background_dead_letter DROP CONSTRAINT IF EXISTS {FK}", what=f"drop {FK}"
    )
