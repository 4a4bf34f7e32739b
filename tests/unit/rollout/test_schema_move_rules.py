"""The rollout-state rules of ``invoke migrate`` (rollout/schema_move.py), as pure functions:
which moves contradict which recorded phase state, and what ``--against-state`` may overrule."""

from __future__ import annotations

import pytest

from rollout.phase import PHASE_ORDER
from rollout.schema_move import Step, conflicts, refusal

UP_EXPAND = [Step("p0003_expand_enums", True, "expand"), Step("p0004_expand_dispatch_window", True, "expand")]
DOWN_EXPAND = [Step("p0004_expand_dispatch_window", False, "expand", ("background_dispatch_window",))]
UP_CONTRACT = [Step("p0013_contract_legacy_job_index", True, "contract")]
DOWN_CONTRACT = [Step("p0013_contract_legacy_job_index", False, "contract")]
DOWN_KIT = [Step("p0002_kit", False, "kit", ("phasegate_rollout_event",))]


def _states(**given: str) -> dict[str, str]:
    return {p: given.get(p, "pending") for p in PHASE_ORDER}


GATED_THROUGH_RETENTION = _states(expand="gated", dual_write="gated", cutover="gated", retention="gated")


@pytest.mark.parametrize(("statuses", "steps", "phase", "overridable", "instead"), [
    # past the current phase: a phase's revisions run in the phase, with its preflight and gate
    (_states(), UP_EXPAND, "expand", True, "invoke rollout --env e --phase expand"),
    (_states(expand="rolled_back"), UP_EXPAND, "expand", True, "invoke rollout --env e --phase expand"),
    (_states(expand="gated"), UP_CONTRACT, "contract", False, "invoke rollout --env e --phase dual_write"),
    (GATED_THROUGH_RETENTION, UP_CONTRACT, "contract", True, "invoke rollout --env e --phase contract"),
    # below a phase while it is applied, or while a later phase runs on its schema
    (_states(expand="gated"), DOWN_EXPAND, "expand", True, "invoke rollout --env e --rollback --to baseline"),
    (_states(expand="rolling_back"), DOWN_EXPAND, "expand", True, "invoke rollout --env e --rollback --to baseline"),
    (_states(expand="gated", dual_write="applying"), DOWN_EXPAND, "expand", False,
     "invoke rollout --env e --rollback --to baseline"),
    ({**GATED_THROUGH_RETENTION, "contract": "gated"}, DOWN_CONTRACT, "contract", True,
     "invoke rollout --env e --rollback --to retention"),
    # the kit's tables hold the rollout state
    (_states(expand="failed"), DOWN_KIT, "kit", False, "invoke rollout --env e --rollback --to baseline"),
])
def test_a_move_that_contradicts_the_state_names_the_phase_and_the_command(
        statuses, steps, phase, overridable, instead) -> None:
    found = conflicts(statuses, steps, "e")
    assert [(c.phase, c.overridable, c.instead) for c in found] == [(phase, overridable, instead)]


@pytest.mark.parametrize(("statuses", "steps"), [
    (_states(expand="gated"), UP_EXPAND),  # the state says the schema is there: a repair
    (_states(expand="rolled_back"), DOWN_EXPAND),
    (_states(), DOWN_KIT),
    ({**GATED_THROUGH_RETENTION, "contract": "gated"}, UP_CONTRACT),
    (GATED_THROUGH_RETENTION, DOWN_CONTRACT),
])
def test_a_move_that_agrees_with_the_state_is_no_conflict(statuses, steps) -> None:
    assert conflicts(statuses, steps, "e") == []


def test_against_state_overrules_exactly_the_one_phase_it_names() -> None:
    soft = conflicts(_states(expand="gated"), DOWN_EXPAND, "e")
    hard = conflicts(_states(expand="gated", dual_write="gated"), DOWN_EXPAND, "e")
    assert "a plan's manual path says --against-state expand" in str(refusal(soft, None, "p0003_expand_enums"))
    assert refusal(soft, "expand", "p0003_expand_enums") is None
    assert "contradicts expand's state, not contract's" in str(refusal(soft, "contract", "p0003_expand_enums"))
    assert "dual_write is gated and runs on expand's schema" in str(refusal(hard, "expand", "p0002_kit"))
    assert "does not contradict expand's state" in str(refusal([], "expand", "p0002_kit"))
    assert refusal([], None, "p0002_kit") is None
    assert str(refusal(hard, None, "p0002_kit")).startswith("migrate to kit refused: ")
