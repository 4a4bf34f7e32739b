"""retention: bounded pruning of run-ledger history, and the first prune.

Apply: flag ``retention=on`` (the application's maintenance job prunes from then on), then
run the first prune (batched deletes, ``ledger.retention``). The prune is irreversible:
it needs ``--yes``, and its rows are not restored. Rollback turns pruning off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from infra.fault_injection import fault_point
from ledger import retention
from rollout import gates
from rollout.actions import flag_action
from rollout.phase import Action, PhaseContext, Sizes
from rollout.settings import Settings


def _first_prune(ctx: PhaseContext) -> None:
    s = ctx.settings
    cutoff = ctx.state.checkpoint.get("pruned_before")
    if cutoff is None:
        cutoff_dt = retention.cutoff_for(s.retention_days)
        ctx.checkpoint(pruned_before=cutoff_dt.isoformat())
    else:
        # A resumed prune keeps the bound it started with (and that the gate checks).
        cutoff_dt = datetime.fromisoformat(cutoff)
    result = retention.prune(ctx.engine, s.retention_days, batch_size=s.prune_batch_size,
                             cutoff=cutoff_dt,
                             on_batch=lambda n: fault_point("during", "retention.first_prune"))
    ctx.log.info("first prune: %s", result, extra={"action_id": "retention.first_prune"})


def _prune_estimate(sizes: Sizes, settings: Settings) -> float:
    return sizes.of("background_function_run") / 200_000  # batched deletes, upper bound


class RetentionPhase:
    name = "retention"
    gate_checks: tuple[str, ...] = (
        "schema_objects", "schema_valid",
        "dedupe_dispatch_unique", "dedupe_enqueued_and_inline", "dedupe_stuck_dispatching",
        "liveness_leases", "liveness_dead_letters", "triage_budgets",
        "retention_bound", "retention_protected",
    )

    def preflight(self, ctx: PhaseContext) -> list[str]:
        return []

    def plan(self) -> list[Action]:
        return [
            flag_action(self.name, "retention", "on", "off"),
            Action(
                id="retention.first_prune",
                title="first prune of history older than retention_days",
                changes="DELETEs background_function_run rows and closed dispatch windows older than the bound",
                apply=_first_prune,
                undo=None,
                irreversible=True,
                manual_apply=("-- ledger/sql/retention.sql blocks prune_runs and prune_windows, repeated until 0 rows",),
                manual_undo=("-- deleted rows are not restored by phasegate; restore them from a backup or "
                             "point-in-time recovery if they are needed",),
                estimate=_prune_estimate,
                long_running=True,  # the crash matrix kills it after its first batch
            ),
        ]

    def gate(self, ctx: PhaseContext) -> list[Any]:
        return gates.run_gate(self, ctx, pruned_before=ctx.state.checkpoint.get("pruned_before"))

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        return []
