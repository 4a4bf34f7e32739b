"""contract: the database becomes the only status store; legacy Redis status keys expire.

Preflight: the soak time since cutover is met. Apply: flag ``write_mode=db_only``, wait out
the flag cache, run the contract revisions, then expire the legacy Redis status keys — the
irreversible step (``--yes``, and the environment's name typed back in production). Once
the keys have expired the engine refuses to roll back past it; the plan gives the manual
path: write_mode back to dual, ``invoke reconcile`` rebuilds the status hashes from the run
ledger, ``invoke migrate --to <expand> --against-state contract`` returns the schema to the
expand point, and the phase's state is marked rolled back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.fault_injection import fault_point
from ledger import redis_layout
from ledger.redis_layout import STATUS_TTL_SECONDS
from migrations.points import CONTRACT, EXPAND
from rollout import gates
from rollout.actions import (
    flag_action,
    manual_flag,
    manual_migrate,
    migrate_action,
    revisions_between,
    wait_action,
)
from rollout.phase import Action, PhaseContext, Sizes
from rollout.settings import Settings

SCAN_COUNT = 1000
EXPIRE_ID = "contract.expire_legacy_keys"


def _expire_legacy_keys(ctx: PhaseContext) -> None:
    ttl = int(ctx.settings.legacy_key_expire_seconds)
    r = ctx.redis
    expired = 0
    # Walk the keyspace by pattern: the index may not list keys written by old code.
    batch: list[bytes] = []
    for key in r.scan_iter(match=f"{redis_layout.KEY_PREFIX}*", count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            expired += _expire(r, batch, ttl)
            batch = []
            fault_point("during", EXPIRE_ID)  # crash tests: killed after a batch
    expired += _expire(r, batch, ttl)
    fault_point("during", EXPIRE_ID)
    ctx.checkpoint(legacy_keys_expired=expired)
    ctx.log.info("expired %d legacy status keys (ttl %ds)", expired, ttl,
                 extra={"action_id": EXPIRE_ID})


# Only shorten a TTL, never lengthen it (idempotent re-runs). A script rather than
# EXPIRE ... LT/NX, which need Redis 7: this works on any Redis with Lua (2.6+).
_SHORTEN_TTL = """
local n = 0
for _, key in ipairs(KEYS) do
  local t = redis.call('TTL', key)
  if t == -1 or t > tonumber(ARGV[1]) then
    redis.call('EXPIRE', key, ARGV[1])
    n = n + 1
  end
end
return n
"""


def _expire(r: Any, keys: list[bytes], ttl: int) -> int:
    if not keys:
        return 0
    r.eval(_SHORTEN_TTL, len(keys), *keys, ttl)
    return len(keys)


def _keys_estimate(sizes: Sizes, settings: Settings) -> float:
    return 1.0 + sizes.of("background_function_run") / 500_000


class ContractPhase:
    name = "contract"
    # The soak time and the confirmation are preconditions (preflight, --yes), not checks.
    gate_checks: tuple[str, ...] = (
        "health_long_transactions", "health_idle_in_transaction", "health_lock_waiters",
        "health_replication_lag",
        "schema_objects", "schema_valid",
        "dedupe_dispatch_unique", "dedupe_enqueued_and_inline", "dedupe_stuck_dispatching",
        "liveness_leases", "liveness_dead_letters", "triage_budgets",
        "retention_bound", "retention_protected",
    )

    def preflight(self, ctx: PhaseContext) -> list[str]:
        reasons = gates.health_preflight(ctx)
        cut = ctx.store.get("cutover")
        if cut.updated_at is not None:
            soaked = (datetime.now(UTC) - cut.updated_at).total_seconds()
            if soaked < ctx.settings.soak_seconds:
                reasons.append(f"soak time since cutover {soaked:.0f}s < required {ctx.settings.soak_seconds:.0f}s")
        return reasons

    def plan(self) -> list[Action]:
        chain = [EXPAND, *revisions_between(EXPAND, CONTRACT)]
        migrations = [
            migrate_action(self.name, rev, prev, f"contract revision {rev}")
            for prev, rev in zip(chain, chain[1:], strict=False)
        ]
        return [
            flag_action(self.name, "write_mode", "db_only", "dual"),
            wait_action(self.name, "write_mode"),
            *migrations,
            Action(
                id=EXPIRE_ID,
                title="expire legacy Redis status keys",
                changes=f"sets a TTL on every {redis_layout.KEY_PREFIX}* key: the legacy status store empties",
                apply=_expire_legacy_keys,
                undo=None,
                irreversible=True,
                rollback_stops=True,
                manual_apply=(f"redis-cli --scan --pattern '{redis_layout.KEY_PREFIX}*' | xargs -n 100 redis-cli expire <ttl>",),
                manual_undo=(
                    "-- the expiry cannot be undone: rebuild the legacy status store from the run ledger",
                    manual_flag("write_mode", "dual"),
                    "sleep <flag_wait>",
                    f"invoke reconcile --env <env> --since {STATUS_TTL_SECONDS // 86400}d",
                    manual_migrate("contract", EXPAND),
                    "-- tell the engine the contract phase is undone, so it accepts the next command",
                    "UPDATE phasegate_rollout_state SET status = 'rolled_back', direction = 'rollback', "
                    "current_action = NULL, completed_actions = '[]', checkpoint = '{}', updated_at = now() "
                    "WHERE phase = 'contract';",
                ),
                verify_undo=(
                    "SELECT value FROM phasegate_flag WHERE name = 'write_mode';  -- expect dual",
                    f"SELECT version_num FROM alembic_version;  -- expect {EXPAND}",  # noqa: S608 (runbook text)
                    "SELECT status FROM phasegate_rollout_state WHERE phase = 'contract';  -- expect rolled_back",
                ),
                estimate=_keys_estimate,
                long_running=True,
            ),
        ]

    def gate(self, ctx: PhaseContext) -> list[Any]:
        return gates.run_gate(self, ctx)

    def rollback_preflight(self, ctx: PhaseContext) -> list[str]:
        return gates.health_preflight(ctx)
