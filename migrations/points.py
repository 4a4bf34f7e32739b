"""Named migration points the rollout moves between.

The revision history is one straight line; a *point* names the revision that ends a group.
The rollout engine upgrades or downgrades to a point, never to an arbitrary revision.
"""

from __future__ import annotations

BASELINE = "p0001_baseline"
KIT = "p0002_kit"
EXPAND = "p0012_expand_dead_letter_job_ix"
CONTRACT = "p0013_contract_legacy_job_index"

POINTS: dict[str, str] = {
    "baseline": BASELINE,
    "kit": KIT,
    "expand": EXPAND,
    "contract": CONTRACT,
}
HEAD = CONTRACT

# Revision ids shipped under another name, old -> new. The contract revision was p0010 while
# two expand revisions (p0011, p0012) sat after it in the chain; it became p0013 so that file
# order is chain order. A database still stamped with an old id is re-stamped before Alembic
# reads it (migrations/env.py), and api.current() reports the new id; rollout state that
# names the old id's migrate action is read under the new one (rollout/state.py). The old
# ids are never reused for another revision.
RENAMED: dict[str, str] = {
    "p0010_contract_legacy_job_index": "p0013_contract_legacy_job_index",
}
