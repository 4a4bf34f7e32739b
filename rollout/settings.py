"""Rollout settings: thresholds and knobs, from ``phasegate.toml`` with per-environment overrides."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from phasegate.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    # DDL safety (exported to migrations/safe_ddl.py through the environment)
    lock_timeout_ms: int = 2000
    ddl_retries: int = 8
    # Preflight: refuse DDL while the application would queue behind it
    max_transaction_seconds: float = 60.0  # oldest open transaction
    max_lock_waiters: int = 0  # sessions waiting on a lock right now
    max_idle_in_transaction_seconds: float = 30.0
    max_replication_lag_seconds: float = 10.0
    # Flags
    flag_ttl_seconds: float = 2.0  # the application's flag cache TTL (waited out)
    # Backfill
    backfill_batch_size: int = 5000
    backfill_rows_per_second: float = 0.0  # 0 = unthrottled
    backfill_backoff_lock_waiters: int = 1  # back off while at least this many lock waiters
    # Gate checks: every threshold a check reads, with its one default. Each check declares
    # the keys it reads (``@check(..., reads=...)`` in checks/); checks hold no defaults.
    check_statement_timeout_ms: int = 30_000  # every check's statement_timeout
    check_lock_timeout_ms: int = 1000  # a check waits at most this long for a lock
    max_replication_lag_bytes: int = 256 * 1024 * 1024
    dedupe_days: float = 1.0  # runs compared for "no key run twice" (a bounded, cheap scan)
    dedupe_max_window_seconds: float = 86400.0  # longer windows are not compared
    stuck_dispatch_seconds: float = 300.0
    backfill_range_size: int = 100_000  # ids per counted range of the backfill check
    parity_grace_seconds: float = 5.0  # a younger difference is in flight, not a mismatch
    parity_max_runs: int = 50_000  # newest runs compared per side
    shadow_sample: int = 200  # newest Redis statuses read through both paths
    lease_seconds: float = 60.0
    dlq_window_seconds: float = 3600.0
    dlq_max_new: int = 100  # FAIL above this many new OPEN dead letters per window
    dlq_warn_min: int = 5  # WARN on doubling only from this many
    triage_budget_ms: float = 250.0
    triage_min_rows: int = 10_000  # below this a seq scan is right: only the budget applies
    retention_slack_hours: float = 24.0  # pruning runs periodically: the bound gets this slack
    retention_guard_seconds: float = 86400.0  # recent runs must keep their dispatch window
    # Retention
    retention_days: float = 30.0
    prune_batch_size: int = 5000
    # Contract
    soak_seconds: float = 0.0  # minimum time since cutover before contract
    legacy_key_expire_seconds: int = 3600

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], base: Settings | None = None) -> Settings:
        base = base or cls()
        known = {f.name: f.type for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
            default = getattr(base, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"setting {key} must be a number, not {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"setting {key} must be a finite number, not {value!r}")
            if value < 0:
                raise ConfigError(f"setting {key} must not be negative ({value})")
            if isinstance(default, int) and value != int(value):
                raise ConfigError(f"setting {key} must be a whole number, not {value!r}")
            changes[key] = type(default)(value)
        return replace(base, **changes)

    def gate_params(self) -> dict[str, Any]:
        """Every setting by name: the params of checks.CheckContext. Each check declares which
        of these it reads (``CheckSpec.reads``), so no list of gate keys is kept here."""
        return asdict(self)
