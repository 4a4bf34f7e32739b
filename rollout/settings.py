"""Rollout settings: thresholds and knobs, from ``phasegate.toml`` with per-environment overrides.

Each setting is declared once, with its default and the range that keeps the kit's promise
(:func:`bounded`): a value that would make PostgreSQL wait forever, a rollout sleep for hours
holding its lock, or a gate pass because it compared nothing is refused, in one line, wherever
it comes from (the file, ``invoke check --param``, or code building a ``Settings``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from phasegate.errors import ConfigError

PG_MAX_MS = 2_147_483_647  # PostgreSQL's largest lock_timeout / statement_timeout (int, ms)
PG_MAX_BIGINT = 2**63 - 1
HOUR, DAY = 3600, 86_400


@dataclass(frozen=True)
class Range:
    """The values a setting may take: ``low`` to ``high`` inclusive, or ``off`` (a value outside
    the range that turns the setting off, such as 0 = unthrottled)."""

    low: float
    high: float
    off: float | None = None

    def admits(self, value: float) -> bool:
        return value == self.off or self.low <= value <= self.high

    def __str__(self) -> str:
        span = f"between {_shown(self.low)} and {_shown(self.high)}"
        return span if self.off is None else f"{_shown(self.off)} (off) or {span}"


def bounded(default: float, low: float, high: float, off: float | None = None) -> Any:
    """A setting's default and its range, side by side (the range lives in the field metadata)."""
    return field(default=default, metadata={"range": Range(low, high, off)})


def _shown(value: float) -> str:
    """A number as people write it: 60, not 60.0; 1000000000, not 1e+09 (but 1e+300 stays)."""
    whole = float(value).is_integer() and abs(value) < 1e16
    return str(int(value)) if whole else repr(float(value))


@dataclass(frozen=True)
class Settings:
    # Ranges, in short: *_ms timeouts 1..PostgreSQL's max (0 would mean wait forever); waits a
    # rollout sleeps through (flag TTL) at most 5 minutes; retries and batch sizes from 1 and
    # bounded; a window, sample or lease that could be 0 would let its check compare nothing.
    # DDL safety (exported to migrations/safe_ddl.py through the environment)
    lock_timeout_ms: int = bounded(2000, 1, PG_MAX_MS)
    ddl_retries: int = bounded(8, 1, 100)  # 0 would fail the DDL on the first lock timeout
    # Preflight: refuse DDL while the application would queue behind it
    max_transaction_seconds: float = bounded(60.0, 0, HOUR)  # oldest open transaction
    max_lock_waiters: int = bounded(0, 0, 100)  # sessions waiting on a lock right now
    max_idle_in_transaction_seconds: float = bounded(30.0, 0, HOUR)
    max_replication_lag_seconds: float = bounded(10.0, 0, HOUR)
    # Flags
    flag_ttl_seconds: float = bounded(2.0, 0, 300)  # the application's flag cache TTL (waited out)
    # Backfill
    backfill_batch_size: int = bounded(5000, 1, 100_000)
    # 0 = unthrottled; below 100 rows/s one batch would sleep for minutes to hours
    backfill_rows_per_second: float = bounded(0.0, 100, 10_000_000, off=0)
    backfill_backoff_lock_waiters: int = bounded(1, 1, 1000)  # back off while at least this many lock waiters
    # Gate checks: every threshold a check reads, with its one default. Each check declares
    # the keys it reads (``@check(..., reads=...)`` in checks/); checks hold no defaults.
    check_statement_timeout_ms: int = bounded(30_000, 1, PG_MAX_MS)  # every check's statement_timeout
    check_lock_timeout_ms: int = bounded(1000, 1, PG_MAX_MS)  # a check waits at most this long for a lock
    max_replication_lag_bytes: int = bounded(256 * 1024 * 1024, 0, 2**40)
    dedupe_days: float = bounded(1.0, 0.01, 90)  # runs compared for "no key run twice" (a bounded, cheap scan)
    dedupe_max_window_seconds: float = bounded(86400.0, 1, 30 * DAY)  # longer windows are not compared
    stuck_dispatch_seconds: float = bounded(300.0, 1, DAY)
    backfill_range_size: int = bounded(100_000, 1, 10_000_000)  # ids per counted range of the backfill check
    parity_grace_seconds: float = bounded(5.0, 0, 600)  # a younger difference is in flight, not a mismatch
    parity_max_runs: int = bounded(50_000, 1, 10_000_000)  # newest runs compared per side
    shadow_sample: int = bounded(200, 1, 100_000)  # newest Redis statuses read through both paths
    lease_seconds: float = bounded(60.0, 1, DAY)
    dlq_window_seconds: float = bounded(3600.0, 1, 30 * DAY)
    dlq_max_new: int = bounded(100, 0, 1_000_000)  # FAIL above this many new OPEN dead letters per window
    dlq_warn_min: int = bounded(5, 0, 1_000_000)  # WARN on doubling only from this many
    triage_budget_ms: float = bounded(250.0, 1, 600_000)
    triage_min_rows: int = bounded(10_000, 0, 100_000_000)  # below this a seq scan is right: only the budget applies
    retention_slack_hours: float = bounded(24.0, 0, 168)  # pruning runs periodically: the bound gets this slack
    retention_guard_seconds: float = bounded(86400.0, 1, 30 * DAY)  # recent runs must keep their dispatch window
    # Retention
    retention_days: float = bounded(30.0, 1, 3650)  # under a day would reach into the dedupe windows
    prune_batch_size: int = bounded(5000, 1, 100_000)
    # Contract
    soak_seconds: float = bounded(0.0, 0, 30 * DAY)  # minimum time since cutover before contract
    legacy_key_expire_seconds: int = bounded(3600, 1, 30 * DAY)

    def __post_init__(self) -> None:
        # Every Settings is valid, however it was built; values take their field's type.
        for f in fields(self):
            object.__setattr__(self, f.name, setting_value(f.name, getattr(self, f.name)))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base: Settings | None = None,
                     where: str | None = None) -> Settings:
        """``base`` (default ``Settings()``) with the keys of ``raw`` (a ``[settings]`` table,
        named ``where`` in errors) replaced, each validated by :func:`setting_value`."""
        unknown = [key for key in raw if key not in _KINDS]
        if unknown:
            place = f" in {where}" if where else ""
            raise ConfigError(f"unknown setting {unknown[0]!r}{place}; known: {', '.join(sorted(_KINDS))}")
        changes: dict[str, Any] = {key: setting_value(key, value) for key, value in raw.items()}
        return replace(base or cls(), **changes)

    def gate_params(self) -> dict[str, Any]:
        """Every setting by name: the params of checks.CheckContext. Each check declares which
        of these it reads (``CheckSpec.reads``), so no list of gate keys is kept here."""
        return asdict(self)


_KINDS: dict[str, type] = {f.name: type(f.default) for f in fields(Settings)}
_RANGES: dict[str, Range] = {f.name: f.metadata["range"] for f in fields(Settings)}


def setting_range(name: str) -> Range:
    return _RANGES[name]


def setting_value(key: str, value: Any) -> int | float:
    """The one validation of a setting's value, from any source: a number (a TOML number, not
    a string or a boolean), finite, whole for whole-number settings, within its range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"setting {key} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"setting {key} must be a finite number, not {value!r}")
    kind = _KINDS[key]
    if kind is int and value != int(value):
        raise ConfigError(f"setting {key} must be a whole number, not {value!r}")
    rng = _RANGES[key]
    if not rng.admits(value):
        raise ConfigError(f"setting {key} must be {rng} (got {_shown(value)})")
    return kind(value)


# The rollout's inputs to the gate checks: not settings (each rollout records its own in its
# checkpoint and passes them to ``gates.run_gate``), but ``invoke check --param`` may pass them.
CHECK_INPUTS: dict[str, str] = {
    "parity_since": "time",  # start of the dual-write window (parity, shadow_read)
    "dedupe_since": "time",  # runs compared since (dedupe_dispatch_unique)
    "pruned_before": "time",  # the pruner's recorded cutoff (retention_protected)
    "backfill_until_id": "id",  # the last job id the backfill covers (backfill_complete)
}


def check_params(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``invoke check --param`` values (text) -> typed params: a setting is read as a TOML
    number would be and validated by :func:`setting_value`, exactly as in ``phasegate.toml``;
    a check input is a past ISO-8601 time or an id. Unknown keys are refused."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _KINDS:
            out[key] = setting_value(key, _number(value))
        elif CHECK_INPUTS.get(key) == "time":
            out[key] = _past_time(key, value)
        elif CHECK_INPUTS.get(key) == "id":
            out[key] = _id(key, value)
        else:
            known = ", ".join([*sorted(_KINDS), *sorted(CHECK_INPUTS)])
            raise ConfigError(f"unknown key {key!r} in --param; known: {known}")
    return out


def _number(text: Any) -> Any:
    """Command-line text as TOML would type it: a number where it reads as one (nan and inf
    included, so the validation can name them), else the text itself."""
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def _past_time(key: str, text: Any) -> str:
    try:
        parsed = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ConfigError(f"--param {key} must be an ISO-8601 time (2024-05-01T12:00:00Z), not {text!r}")
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # naive means UTC
    if parsed > datetime.now(UTC):  # a window starting in the future compares nothing
        raise ConfigError(f"--param {key} must not be in the future ({parsed.isoformat()})")
    return parsed.isoformat()


def _id(key: str, text: Any) -> int:
    value = text.strip() if isinstance(text, str) else None
    if value is None or not value.isdigit() or int(value) > PG_MAX_BIGINT:
        raise ConfigError(f"--param {key} must be an id (a whole number from 0), not {text!r}")
    return int(value)
