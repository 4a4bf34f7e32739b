"""dual_write: the application writes status to Redis and the run ledger; history is backfilled.

Apply: flag ``write_mode=dual``, wait out the application's flag cache, then backfill the
history of finished jobs in bounded, resumable, throttled batches. Rollback: flag back to
``redis_only`` (backfilled rows stay: they are correct history, and re-apply skips them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledger.redis_layout import SQL_ESCAPE_PARAMS
from rollout import backfill, gates
from rollout.actions import flag_action, wait_action
from rollout.phase import Action, PhaseContext, Sizes
from rollout.settings import Settings

ESCAPE_VALUES = ", ".join(f"{name} = '{value}'" for name, value in SQL_ESCAPE_PARAMS.items())


def _backfill(ctx: PhaseContext) -> None:
    backfill.run(ctx)


def _backfill_estimate(sizes: Sizes, settings: Settings) -> float:
    rows = sizes.of("background_job")
    rate = settings.backfill_rows_per_second or 50_000.0  # measured: see bench/
    return rows / rate


class DualWritePhase:
    name = "dual_write"
    gate_checks: tuple[str, ...] = (
        "schema_objects", "schema_valid",
        "dedupe_dispatch_unique", "dedupe_enqueued_and_inline", "dedupe_stuck_dispatching",
        "backfill_complete", "parity", "liveness_leases", "liveness_dead_letters",
    )

    def preflight(self, ctx: PhaseContext) -> list[str]:
        return []

    def plan(self) -> list[Action]:
        flag = flag_action(self.name, "write_mode", "dual", "redis_only")
        mark = Action(
            id="dual_write.mark_window",
            title="record the start of the dual-write window",
            changes="rollout state only: the time from which parity is checked",
            apply=_mark_window,
        )
        return [
            flag,
            wait_action(self.name, "write_mode"),
            mark,
            Action(
                id="dual_write.backfill",
                title="backfill finished jobs into the run ledger",
                changes="inserts background_function_run rows (and dead letters for FAILED jobs) for jobs that existed before dual write",
                apply=_backfill,
                undo=None,
                manual_apply=("-- see rollout/sql/backfill.sql, block backfill_runs, run per id "
                              f"range with {ESCAPE_VALUES} (the run-key escape table)",),
                manual_undo=("-- nothing to undo: backfilled rows are correct history; to remove them:",
                             "DELETE FROM background_function_run WHERE run_id LIKE 'job-%' AND created_at >= '<dual_write start>';"),
                estimate=_backfill_estimate,
                long_running=True,
            ),
        ]

    def gate(self, ctx: PhaseContext) -> list[Any]:
        cp = ctx.state.checkpoint
        return gates.run_gate(self, ctx, parity_since=cp.get("dual_since"),
                              backfill_until_id=cp.get("backfill_until_id"))

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        return []


def _mark_window(ctx: PhaseContext) -> None:
    if "dual_since" not in ctx.state.checkpoint:
        ctx.checkpoint(dual_since=datetime.now(UTC).isoformat())
