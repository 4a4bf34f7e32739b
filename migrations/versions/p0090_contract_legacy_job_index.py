"""contract: drop the baseline (status, run_at) index, replaced by the partial claim index

Reversible: the downgrade rebuilds it CONCURRENTLY. The contract phase's irreversible steps
(expiring legacy Redis keys) live in the rollout, not here.

Shipped first as ``p0010_contract_legacy_job_index``, before p0011 and p0012 were added
under it; renumbered so file order is chain order, to p0090 so that expand revisions have
numbers free before it (it was ``p0013_contract_legacy_job_index`` for a while, never in a
release). ``migrations.points.RENAMED`` re-stamps databases that still carry the shipped id.
"""

from __future__ import annotations

from migrations import safe_ddl

revision = "p0090_contract_legacy_job_index"
down_revision = "p0014_expand_ledger_integrity"
branch_labels = None
depends_on = None
phase = "contract"


def upgrade() -> None:
    safe_ddl.drop_index_concurrently("ix_background_job_status_run_at")


def downgrade() -> None:
    safe_ddl.create_index_concurrently(
        "ix_background_job_status_run_at", "background_job", "status, run_at"
    )
