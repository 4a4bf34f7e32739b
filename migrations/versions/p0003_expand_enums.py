"""expand: the reliability enums (dispatch status, run status, error class, dead-letter status)

CREATE TYPE takes no lock on any table.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "p0003_expand_enums"
down_revision = "p0002_kit"
branch_labels = None
depends_on = None
phase = "expand"

ENUMS = (
    pg.ENUM("DISPATCHING", "ENQUEUED", "ENQUEUE_FAILED", "INLINE_EMERGENCY",
            name="background_dispatch_status"),
    pg.ENUM("RUNNING", "SUCCEEDED", "FAILED", name="background_function_run_status"),
    pg.ENUM("RETRIABLE", "TERMINAL", name="background_error_class"),
    pg.ENUM("OPEN", "REQUEUED", "DISCARDED", name="background_dead_letter_status"),
)


def upgrade() -> None:
    for enum in ENUMS:
        enum.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    for enum in reversed(ENUMS):
        enum.drop(op.get_bind(), checkfirst=True)
