"""cutover: the application reads status from the run ledger.

Apply: compare the Redis and database read paths on a sample (shadow read) and refuse to
flip on a mismatch; then flag ``read_source=db`` and wait out the flag cache. Rollback: flag
back to ``read_source=redis`` (dual write is still on, so Redis is current).
"""

from __future__ import annotations

from typing import Any

from rollout import gates
from rollout.actions import flag_action, wait_action
from rollout.errors import RolloutError
from rollout.phase import Action, PhaseContext

SHADOW_READ_CHECK = "shadow_read"


def _shadow_read(ctx: PhaseContext) -> None:
    failed = gates.failures(gates.run([SHADOW_READ_CHECK], ctx, parity_since=_dual_since(ctx)))
    if failed:
        raise RolloutError(f"shadow read found differences: {'; '.join(failed)}")


def _dual_since(ctx: PhaseContext) -> Any:
    return ctx.store.get("dual_write").checkpoint.get("dual_since")


class CutoverPhase:
    name = "cutover"
    gate_checks: tuple[str, ...] = (
        "schema_objects", "schema_valid",
        "dedupe_dispatch_unique", "dedupe_enqueued_and_inline", "dedupe_stuck_dispatching",
        "parity", SHADOW_READ_CHECK, "liveness_leases", "liveness_dead_letters",
        "triage_budgets",
    )

    def preflight(self, ctx: PhaseContext) -> list[str]:
        return []

    def plan(self) -> list[Action]:
        return [
            Action(
                id="cutover.shadow_read",
                title="shadow-read comparison (Redis path vs DB path)",
                changes="nothing; reads a sample through both paths and compares",
                apply=_shadow_read,
            ),
            flag_action(self.name, "read_source", "db", "redis"),
            wait_action(self.name, "read_source"),
        ]

    def gate(self, ctx: PhaseContext) -> list[Any]:
        return gates.run_gate(self, ctx, parity_since=_dual_since(ctx))

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        return []
