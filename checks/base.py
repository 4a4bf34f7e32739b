"""The check registry: what a check is, how checks run, and which ones gate which phase.

A check is a function registered with :func:`check`. It receives a read-only
:class:`Probe` (a psycopg connection inside a READ ONLY transaction with a
``statement_timeout``, plus the Redis client when one is configured) and returns an
:class:`Outcome`; :func:`run_checks` times it and turns it into a :class:`CheckResult`.
A check that raises becomes FAIL with the error in its summary: a gate never crashes.
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
from sqlalchemy.engine import make_url

from ledger.errors import PhasegateError, mask_secrets

# "preflight" is not a rollout phase: it names the health checks run before lock-taking DDL.
PHASES = ("preflight", "expand", "dual_write", "cutover", "retention", "contract")
MAX_EVIDENCE = 20
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000


class Verdict(enum.StrEnum):
    PASS = "pass"  # the invariant holds
    WARN = "warn"  # holds, but something deserves a look; does not block a gate
    FAIL = "fail"  # violated, or the check could not run; blocks the gate


class UnknownCheck(PhasegateError):
    """No check has that id."""

    def __init__(self, check_id: str) -> None:
        super().__init__(f"unknown check {check_id!r}; see `invoke check --list`")
        self.check_id = check_id


class UnknownPhase(PhasegateError):
    """No phase has that name."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"unknown phase {phase!r}; choose one of {', '.join(PHASES)}")
        self.phase = phase


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


@dataclass(frozen=True)
class CheckContext:
    """Where to look and with which thresholds (see ``checks/README.md`` for every param)."""

    db_url: str  # SQLAlchemy URL postgresql+psycopg://...
    redis_url: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str, default: Any) -> Any:
        value = self.params.get(name)
        return default if value is None else value


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
    """A registered check: identity, which phases it gates, and its function."""

    check_id: str
    title: str
    phases: tuple[str, ...]
    severity: str  # critical | major | minor: how bad a FAIL is, for people reading reports
    fn: CheckFn
    sql_file: str | None = None  # the .sql file holding its named queries


REGISTRY: dict[str, CheckSpec] = {}


def check(check_id: str, title: str, phases: Sequence[str], severity: str = "critical",
          sql_file: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under ``check_id``."""
    bad = [p for p in phases if p not in PHASES]
    if bad:
        raise UnknownPhase(bad[0])

    def register(fn: CheckFn) -> CheckFn:
        if check_id in REGISTRY:
            raise PhasegateError(f"check {check_id!r} registered twice")
        REGISTRY[check_id] = CheckSpec(check_id, title, tuple(phases), severity, fn, sql_file)
        return fn

    return register


def psycopg_dsn(db_url: str) -> str:
    """SQLAlchemy URL (postgresql+psycopg://) -> libpq DSN."""
    url = make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def connect(ctx: CheckContext) -> psycopg.Connection:
    """A connection that cannot write: every transaction READ ONLY, statements time-boxed."""
    timeout = int(ctx.param("statement_timeout_ms", DEFAULT_STATEMENT_TIMEOUT_MS))
    lock_timeout = int(ctx.param("check_lock_timeout_ms", 1000))
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


def gate_checks(phase: str) -> list[str]:
    """Ids of the checks that gate ``phase``, in a stable order."""
    if phase not in PHASES:
        raise UnknownPhase(phase)
    return [cid for cid, spec in all_checks().items() if phase in spec.phases]


def _run_one(spec: CheckSpec, conn: psycopg.Connection | None, ctx: CheckContext,
             redis_client: Any, connect_error: str | None) -> tuple[CheckResult, Any]:
    started = time.perf_counter()
    probe = None
    try:
        if conn is None:
            raise PhasegateError(connect_error or "no database connection")
        probe = Probe(conn, ctx, redis_client)
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


def run_gate(phase: str, ctx: CheckContext) -> list[CheckResult]:
    """Run every check gating ``phase``."""
    return run_checks(gate_checks(phase), ctx)


def passed(results: Iterable[CheckResult]) -> bool:
    """True when no result is FAIL (WARN does not block)."""
    return all(r.verdict is not Verdict.FAIL for r in results)


def results_json(results: Iterable[CheckResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)
