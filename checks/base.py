"""The check registry: what a check is, which settings it reads, and how checks run.

A check is a function registered with :func:`check`. It receives a read-only
:class:`Probe` (a psycopg connection inside a READ ONLY transaction with a
``statement_timeout``, plus the Redis client when one is configured) and returns an
:class:`Outcome`; :func:`run_checks` times it and turns it into a :class:`CheckResult`.
A check that raises becomes FAIL with the error in its summary: a gate never crashes.

Which checks gate a phase is not kept here: each phase declares its own tuple of check ids
(``gate_checks`` in ``rollout/phases/*.py``). Thresholds have no defaults here either: a
check names the settings it reads (``reads=``) and gets their values from the context's
params, which the rollout builds from ``rollout.settings.Settings`` (the one place every
default is written).
"""

from __future__ import annotations

import enum
import importlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from phasegate.errors import ConfigError, PhasegateError
from phasegate.text import mask_secrets
from phasegate.urls import libpq_dsn

MAX_EVIDENCE = 20
# The settings every check's connection reads (its statement and lock timeouts).
CONNECTION_READS = ("check_statement_timeout_ms", "check_lock_timeout_ms")


class Verdict(enum.StrEnum):
    PASS = "pass"  # the invariant holds
    WARN = "warn"  # holds, but something deserves a look; does not block a gate
    FAIL = "fail"  # violated, or the check could not run; blocks the gate


class UnknownCheck(PhasegateError):
    """No check has that id."""

    def __init__(self, check_id: str) -> None:
        super().__init__(f"unknown check {check_id!r}; see `invoke check --list`")
        self.check_id = check_id


def jsonable(value: Any) -> Any:
    """Make a value from a row JSON-serialisable (datetimes as ISO, Decimals as float)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value


def bounded(rows: Iterable[Mapping[str, Any]], limit: int = MAX_EVIDENCE) -> tuple[dict, ...]:
    """At most ``limit`` rows of evidence, JSON-safe."""
    out: list[dict] = []
    for row in rows:
        if len(out) >= limit:
            break
        out.append(jsonable(dict(row)))
    return tuple(out)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, with a bounded sample of the rows that prove it."""

    check_id: str
    title: str
    verdict: Verdict
    summary: str
    evidence: tuple[dict, ...]
    duration_ms: float
    severity: str

    def to_dict(self) -> dict:
        return {
            "check_id": self.check_id,
            "title": self.title,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "evidence": [jsonable(e) for e in self.evidence],
            "duration_ms": round(self.duration_ms, 3),
            "severity": self.severity,
        }


class MissingSetting(ConfigError):
    """A check reads a setting the context's params do not give."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(f"no value for setting(s) {', '.join(names)}; build the params from "
                         "rollout.settings.Settings (rollout.gates.context does)")
        self.names = tuple(names)


@dataclass(frozen=True)
class CheckContext:
    """Where to look, the settings the checks read, and the rollout's inputs (``parity_since``,
    ``backfill_until_id``, ``pruned_before``...); see ``checks/README.md``."""

    db_url: str  # SQLAlchemy URL postgresql+psycopg://...
    redis_url: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a check function returns; the runner adds id, title, timing and severity."""

    verdict: Verdict
    summary: str
    evidence: tuple[dict, ...] = ()

    @classmethod
    def of(cls, failures: Sequence[Mapping[str, Any]], ok: str, bad: str,
           *, verdict: Verdict = Verdict.FAIL) -> Outcome:
        """PASS with ``ok`` when ``failures`` is empty, else ``verdict`` with ``bad``."""
        if not failures:
            return cls(Verdict.PASS, ok)
        return cls(verdict, bad, bounded(failures))


@dataclass
class Probe:
    """A check's read-only view: the database connection and, if configured, Redis."""

    conn: psycopg.Connection
    ctx: CheckContext
    _redis: Any = None
    reads: tuple[str, ...] = ()  # the settings the running check declared

    def setting(self, name: str) -> Any:
        """The value of a setting the check declared in ``reads`` (an undeclared read is a
        bug: the plan shows a check's declared settings as its thresholds)."""
        if name not in self.reads:
            raise PhasegateError(f"the check reads setting {name!r} without declaring it")
        value = self.ctx.params.get(name)
        if value is None:
            raise MissingSetting([name])
        return value

    def rows(self, sql: Any, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[dict]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def one(self, sql: Any, params: Mapping[str, Any] | Sequence[Any] | None = None) -> dict:
        rows = self.rows(sql, params)
        return rows[0] if rows else {}

    @property
    def redis(self) -> Any:
        if self._redis is None:
            if not self.ctx.redis_url:
                raise PhasegateError("this check needs Redis, and no Redis URL was given")
            import redis as redis_lib

            self._redis = redis_lib.Redis.from_url(
                self.ctx.redis_url, decode_responses=True, socket_timeout=10)
        return self._redis


CheckFn = Callable[[Probe], Outcome]


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: identity, the settings it reads, and its function."""

    check_id: str
    title: str
    reads: tuple[str, ...]  # setting names (rollout.settings.Settings fields) it reads
    severity: str  # critical | major | minor: how bad a FAIL is, for people reading reports
    fn: CheckFn
    sql_file: str | None = None  # the .sql file holding its named queries


REGISTRY: dict[str, CheckSpec] = {}


def check(check_id: str, title: str, *, reads: Sequence[str] = (), severity: str = "critical",
          sql_file: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under ``check_id``; ``reads`` names every setting it reads."""

    def register(fn: CheckFn) -> CheckFn:
        if check_id in REGISTRY:
            raise PhasegateError(f"check {check_id!r} registered twice")
        REGISTRY[check_id] = CheckSpec(check_id, title, tuple(reads), severity, fn, sql_file)
        return fn

    return register


def psycopg_dsn(db_url: str) -> str:
    """SQLAlchemy URL (postgresql+psycopg://) -> libpq DSN, its percent-encoding kept as given
    (SQLAlchemy's re-rendering decodes a space, which libpq then refuses)."""
    return libpq_dsn(db_url)


def connect(ctx: CheckContext) -> psycopg.Connection:
    """A connection that cannot write: every transaction READ ONLY, statements time-boxed."""
    missing = [k for k in CONNECTION_READS if ctx.params.get(k) is None]
    if missing:
        raise MissingSetting(missing)
    timeout = int(ctx.params["check_statement_timeout_ms"])
    lock_timeout = int(ctx.params["check_lock_timeout_ms"])
    options = (f"-c default_transaction_read_only=on -c statement_timeout={timeout} "
               f"-c lock_timeout={lock_timeout} -c application_name=phasegate-check")
    try:
        return psycopg.connect(psycopg_dsn(ctx.db_url), autocommit=True, options=options,
                               connect_timeout=10)
    except psycopg.Error as exc:
        raise PhasegateError(mask_secrets(f"cannot connect to the database: {exc}")) from exc


# Registration (and so report) order: the order people read a gate in.
CHECK_MODULES = ("health", "schema", "lint_gate", "dedupe", "backfill", "parity", "shadow", "liveness",
                 "triage", "retention")


def _load_all() -> None:
    # Importing the modules registers their checks; done here so callers of the registry
    # never see a half-populated REGISTRY.
    for name in CHECK_MODULES:
        importlib.import_module(f"checks.{name}")


def all_checks() -> dict[str, CheckSpec]:
    """Every registered check, by id, in registration order."""
    _load_all()
    return dict(REGISTRY)


def _run_one(spec: CheckSpec, conn: psycopg.Connection | None, ctx: CheckContext,
             redis_client: Any, connect_error: str | None) -> tuple[CheckResult, Any]:
    started = time.perf_counter()
    probe = None
    try:
        if conn is None:
            raise PhasegateError(connect_error or "no database connection")
        probe = Probe(conn, ctx, redis_client, spec.reads)
        with conn.transaction():
            outcome = spec.fn(probe)
    except Exception as exc:  # a check that errors is a FAIL, never a crash of the gate
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        outcome = Outcome(Verdict.FAIL, mask_secrets(f"check could not run: {detail}"))
    duration = (time.perf_counter() - started) * 1000.0
    result = CheckResult(spec.check_id, spec.title, outcome.verdict, outcome.summary,
                         bounded(outcome.evidence), duration, spec.severity)
    return result, (probe._redis if probe is not None else redis_client)


def run_checks(check_ids: Sequence[str], ctx: CheckContext) -> list[CheckResult]:
    """Run the given checks (read-only, one READ ONLY transaction each), in order."""
    registry = all_checks()
    specs = []
    for cid in check_ids:
        if cid not in registry:
            raise UnknownCheck(cid)
        specs.append(registry[cid])
    # A forgotten setting is a caller's mistake, not a failed invariant: say so before running.
    wanted = dict.fromkeys([*CONNECTION_READS, *(k for s in specs for k in s.reads)])
    missing = [k for k in wanted if ctx.params.get(k) is None]
    if missing:
        raise MissingSetting(missing)
    conn: psycopg.Connection | None = None
    connect_error = None
    try:
        conn = connect(ctx)
    except PhasegateError as exc:
        connect_error = str(exc)
    redis_client = None
    results: list[CheckResult] = []
    try:
        for spec in specs:
            result, redis_client = _run_one(spec, conn, ctx, redis_client, connect_error)
            results.append(result)
    finally:
        if conn is not None:
            conn.close()
        if redis_client is not None:
            redis_client.close()
    return results


def passed(results: Iterable[CheckResult]) -> bool:
    """True when no result is FAIL (WARN does not block)."""
    return all(r.verdict is not Verdict.FAIL for r in results)


def results_json(results: Iterable[CheckResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)
