"""Named migration points the rollout moves between.

The revision history is one straight line; a *point* names the revision that ends a group.
The rollout engine upgrades or downgrades to a point, never to an arbitrary revision.
"""

from __future__ import annotations

BASELINE = "p0001_baseline"
KIT = "p0002_kit"
EXPAND = "p0014_expand_ledger_integrity"
CONTRACT = "p0090_contract_legacy_job_index"

POINTS: dict[str, str] = {
    "baseline": BASELINE,
    "kit": KIT,
    "expand": EXPAND,
    "contract": CONTRACT,
}
HEAD = CONTRACT

# Revision ids shipped under another name, old -> new. The contract revision shipped as p0010
# while two expand revisions (p0011, p0012) sat after it in the chain; it became p0090 so that
# file order is chain order with numbers free for expand revisions before it. (In between it
# was p0013_contract_legacy_job_index, never in a release: that id has no entry, and a
# database stamped with it is refused as unknown rather than guessed at.) A database still
# stamped with an old id is re-stamped before Alembic reads it (migrations/env.py), and
# api.current() reports the new id; rollout state that names the old id's migrate action is
# read under the new one (rollout/state.py). The old ids are never reused for another
# revision.
RENAMED: dict[str, str] = {
    "p0010_contract_legacy_job_index": "p0090_contract_legacy_job_index",
}
