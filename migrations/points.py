"""Named migration points the rollout moves between.

The revision history is one straight line; a *point* names the revision that ends a group.
The rollout engine upgrades or downgrades to a point, never to an arbitrary revision.
"""

from __future__ import annotations

BASELINE = "p0001_baseline"
KIT = "p0002_kit"
EXPAND = "p0012_expand_dead_letter_job_ix"
CONTRACT = "p0010_contract_legacy_job_index"

POINTS: dict[str, str] = {
    "baseline": BASELINE,
    "kit": KIT,
    "expand": EXPAND,
    "contract": CONTRACT,
}
HEAD = CONTRACT
