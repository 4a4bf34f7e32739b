"""One module per phase; ``PHASES`` in rollout order."""

from __future__ import annotations

from rollout.phase import PHASE_ORDER, Phase
from rollout.phases.contract import ContractPhase
from rollout.phases.cutover import CutoverPhase
from rollout.phases.dual_write import DualWritePhase
from rollout.phases.expand import ExpandPhase
from rollout.phases.retention import RetentionPhase

PHASES: dict[str, Phase] = {
    p.name: p
    for p in (ExpandPhase(), DualWritePhase(), CutoverPhase(), RetentionPhase(), ContractPhase())
}
assert tuple(PHASES) == PHASE_ORDER
