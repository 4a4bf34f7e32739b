"""expand: additive DDL only — the reliability enums, tables, columns and indexes.

Each revision between the ``kit`` and ``expand`` points is one action (so a killed run
resumes at the next revision); every lock-taking statement runs under lock_timeout with
retry, indexes on live tables are built CONCURRENTLY, constraints NOT VALID then VALIDATE.
Rollback downgrades the additive revisions, newest first.
"""

from __future__ import annotations

from typing import Any

from migrations.points import EXPAND, KIT
from rollout import gates
from rollout.actions import migrate_action, revisions_between
from rollout.phase import Action, PhaseContext


class ExpandPhase:
    name = "expand"
    gate_checks: tuple[str, ...] = (
        # the preflight's health checks, run again once the DDL is done
        "health_long_transactions", "health_idle_in_transaction", "health_lock_waiters",
        "health_replication_lag",
        "schema_objects", "schema_valid", "migrations_lint",
    )

    def preflight(self, ctx: PhaseContext) -> list[str]:
        return gates.health_preflight(ctx)

    def plan(self) -> list[Action]:
        chain = [KIT, *revisions_between(KIT, EXPAND)]
        return [
            migrate_action(self.name, rev, prev, f"additive DDL of revision {rev}")
            for prev, rev in zip(chain, chain[1:], strict=False)
        ]

    def gate(self, ctx: PhaseContext) -> list[Any]:
        return gates.run_gate(self, ctx)

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        return gates.health_preflight(ctx)
