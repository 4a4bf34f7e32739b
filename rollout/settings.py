"""Rollout settings: thresholds and knobs, from ``phasegate.toml`` with per-environment overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ledger.errors import ConfigError


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
    # Gates
    parity_grace_seconds: float = 5.0
    stuck_dispatch_seconds: float = 300.0
    triage_budget_ms: float = 250.0
    lease_seconds: float = 60.0
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
        """The thresholds the gate checks read (checks.CheckContext.params)."""
        return {
            "parity_grace_seconds": self.parity_grace_seconds,
            "stuck_dispatch_seconds": self.stuck_dispatch_seconds,
            "triage_budget_ms": self.triage_budget_ms,
            "lease_seconds": self.lease_seconds,
            "retention_days": self.retention_days,
            "max_transaction_seconds": self.max_transaction_seconds,
            "max_lock_waiters": self.max_lock_waiters,
            "max_idle_in_transaction_seconds": self.max_idle_in_transaction_seconds,
            "max_replication_lag_seconds": self.max_replication_lag_seconds,
        }
