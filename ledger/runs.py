"""The run ledger: one durable row per attempt of a function run, keyed by ``run_key``.

``start`` is one ``INSERT ... ON CONFLICT (run_key) DO NOTHING``: a repeated start of the
same attempt inserts nothing and returns the stored row. ``succeed``/``fail`` are one
``UPDATE ... WHERE status = 'RUNNING'``: an attempt settles once; a repeat of the same
outcome returns the row (a retried call), any other move raises
:class:`IllegalRunTransition`. Failed attempts store their error class and error, so "top
terminal errors in the last day" is one range scan of ``ix_background_function_run_failed``.

Rows are found by their key, which :mod:`ledger.redis_layout` escapes so that no two attempts
share one. An escaped run (a name with ``:`` or ``%``) may still have rows under the key the
pre-encoding code gave it: every write of such a run first moves them to their escaped key
(``rekey_legacy_run``), so an attempt started before the upgrade settles after it, and a
legacy row holding this run's key is moved off it rather than taken for this run's.

This class always talks to the database: :class:`ledger.status.JobStatusStore` decides,
per call and per ``write_mode``, whether the run ledger is written at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger import sqlfiles
from ledger.db import Database
from ledger.errors import IllegalRunTransition, RunKeyConflict
from ledger.models import ErrorClass, FunctionRunStatus
from ledger.redis_layout import SQL_ESCAPE_PARAMS, is_escaped, parse_run_key
from ledger.redis_layout import run_key as make_run_key

RUNNING = FunctionRunStatus.RUNNING.value

# ON CONFLICT DO NOTHING, not DO UPDATE ... RETURNING (xmax = 0): measured, the latter cost
# ~40% of the throughput. A new attempt is one statement; a repeated start (rare: a retried
# call) reads the existing row with a second one.
START_SQL = sqlfiles.query(__file__, "runs", "start_run")
# Many starts are one statement over one array per column: the same text for any batch
# size, so psycopg prepares it once (a multi-row VALUES list is a new statement per size).
START_MANY_SQL = sqlfiles.query(__file__, "runs", "start_runs")
FINISH_SQL = sqlfiles.query(__file__, "runs", "finish_run")
GET_SQL = sqlfiles.query(__file__, "runs", "get_run")
GET_MANY_SQL = sqlfiles.query(__file__, "runs", "get_runs")
LATEST_SQL = sqlfiles.query(__file__, "runs", "latest_attempt")
HISTORY_SQL = sqlfiles.query(__file__, "runs", "run_history")
LATEST_IN_RANGE_SQL = sqlfiles.query(__file__, "runs", "latest_attempts_in_range")
TOP_ERRORS_SQL = sqlfiles.query(__file__, "runs", "top_errors")
LATEST_OF_RUNS_SQL = sqlfiles.query(__file__, "runs", "latest_attempts_of_runs")
REKEY_SQL = sqlfiles.query(__file__, "runs", "rekey_legacy_run")
# A round moves every legacy row in the way whose escaped key is free; one whose escaped key
# another legacy row holds moves in the round after that one did. A chain of more than a few
# links needs names like 'a:b', 'a%3Ab', 'a%253Ab', ... all stored under pre-encoding keys.
MAX_REKEY_ROUNDS = 4


@dataclass(frozen=True)
class RunRecord:
    """One attempt as the run ledger holds it."""

    run_key: str
    function_name: str
    run_id: str
    attempt: int
    status: str
    dispatch_key: str | None = None
    correlation_id: str | None = None
    job_id: int | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    error_class: str | None = None
    terminal_error: str | None = None
    updated_at: datetime | None = None
    created: bool = False  # True only on the call that inserted the row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        values: dict[str, Any] = {
            k: (str(v) if k in ("status", "error_class") and v is not None else v)
            for k, v in row.items()}
        return cls(**values)


@dataclass(frozen=True)
class RunStart:
    """The input of one attempt's start (for :meth:`RunLedger.start_many`)."""

    function_name: str
    run_id: str
    attempt: int = 1
    dispatch_key: str | None = None
    correlation_id: str | None = None
    job_id: int | None = None
    requested_at: datetime | None = None

    @property
    def run_key(self) -> str:
        return make_run_key(self.function_name, self.run_id, self.attempt)

    def params(self) -> dict[str, Any]:
        """The parameters of ``start_run``."""
        return {"run_key": self.run_key, "function_name": self.function_name,
                "run_id": self.run_id, "attempt": self.attempt,
                "dispatch_key": self.dispatch_key, "correlation_id": self.correlation_id,
                "job_id": self.job_id, "requested_at": self.requested_at}

    def record(self, now: datetime | None = None) -> RunRecord:
        """The record of this attempt as just inserted (times from this process's clock)."""
        now = now or datetime.now(UTC)
        return RunRecord(self.run_key, self.function_name, self.run_id, self.attempt, RUNNING,
                         self.dispatch_key, self.correlation_id, self.job_id,
                         self.requested_at or now, now, updated_at=now, created=True)


class RunLedger:
    """Reads and writes ``background_function_run``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, function_name: str, run_id: str, attempt: int = 1, *,
              dispatch_key: str | None = None, correlation_id: str | None = None,
              job_id: int | None = None, requested_at: datetime | None = None) -> RunRecord:
        """Record attempt ``attempt`` as RUNNING (or return it if already recorded).

        For a new attempt the record's times are this process's clock (the row's own are
        the database's); a repeated start returns the stored row."""
        start = RunStart(function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
                         requested_at)

        def insert(conn: psycopg.Connection) -> RunRecord:
            _settle_legacy(conn, start.function_name, start.run_id, start.attempt)
            if conn.execute(START_SQL, start.params()).rowcount:
                return start.record()
            row = _fetch_one(conn, GET_SQL, {"run_key": start.run_key})
            assert row is not None  # the conflicting row is committed (DO NOTHING waited)
            return RunRecord.from_row(row)

        return self.db.run(insert)

    def start_many(self, starts: Sequence[RunStart]) -> list[RunRecord]:
        """Start many attempts in ONE multi-row statement (duplicates in the batch merged);
        attempts that already existed are read back with one more."""
        unique = {s.run_key: s for s in starts}
        if not unique:
            return []
        params = _start_many_params(unique.values())

        def insert(conn: psycopg.Connection) -> list[RunRecord]:
            for one in unique.values():
                _settle_legacy(conn, one.function_name, one.run_id, one.attempt)
            created = {r[0] for r in conn.execute(START_MANY_SQL, params).fetchall()}
            now = datetime.now(UTC)
            out = [s.record(now) for key, s in unique.items() if key in created]
            existing = [key for key in unique if key not in created]
            if existing:
                out += [RunRecord.from_row(r) for r in _fetch_all(conn, GET_MANY_SQL, {"run_keys": existing})]
            return out

        return self.db.run(insert)

    def succeed(self, run_key: str) -> RunRecord:
        """RUNNING -> SUCCEEDED, with finished time and duration."""
        return self._finish(run_key, FunctionRunStatus.SUCCEEDED.value, None, None)

    def fail(self, run_key: str, error_class: ErrorClass | str, error: str) -> RunRecord:
        """RUNNING -> FAILED, storing the error class and the error."""
        return self._finish(run_key, FunctionRunStatus.FAILED.value,
                            ErrorClass(error_class).value, error)

    def _finish(self, run_key: str, status: str, error_class: str | None,
                error: str | None) -> RunRecord:
        run = parse_run_key(run_key)  # None: a pre-encoding key, addressed as it is

        def update(conn: psycopg.Connection) -> dict[str, Any] | None:
            if run is not None:
                _settle_legacy(conn, *run)
            return _fetch_one(conn, FINISH_SQL, {"status": status, "error_class": error_class,
                                                 "terminal_error": error, "run_key": run_key})

        row = self.db.run(update)
        if row is not None:
            return RunRecord.from_row(row)
        current = self.get(run_key)
        if current is not None and current.status == status:
            return current  # the same outcome repeated (a retried call): idempotent
        raise IllegalRunTransition("run", run_key, current.status if current else None, status)

    def get(self, run_key: str) -> RunRecord | None:
        row = self.db.run(lambda c: _fetch_one(c, GET_SQL, {"run_key": run_key}))
        return None if row is None else RunRecord.from_row(row)

    def latest(self, function_name: str, run_id: str) -> RunRecord | None:
        """The highest attempt of a run (what its status is)."""
        row = self.db.run(lambda c: _fetch_one(
            c, LATEST_SQL, {"run_id": run_id, "function_name": function_name}))
        return None if row is None else RunRecord.from_row(row)

    def latest_of(self, runs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], RunRecord]:
        """The highest attempt of each ``(function_name, run_id)`` the ledger has, by run."""
        pairs = list(dict.fromkeys(runs))
        if not pairs:
            return {}
        rows = self.db.run(lambda c: _fetch_all(c, LATEST_OF_RUNS_SQL, {
            "function_names": [p[0] for p in pairs], "run_ids": [p[1] for p in pairs]}))
        return {(r["function_name"], r["run_id"]): RunRecord.from_row(r) for r in rows}

    def history(self, job_ids: Sequence[int]) -> list[RunRecord]:
        """Every attempt recorded for these jobs, oldest first."""
        rows = self.db.run(lambda c: _fetch_all(c, HISTORY_SQL, {"job_ids": list(job_ids)}))
        return [RunRecord.from_row(r) for r in rows]

    def latest_in_range(self, since: datetime, until: datetime,
                        batch: int = 1000) -> Iterator[list[RunRecord]]:
        """Latest attempt of each run requested in [since, until), in batches."""
        with self.db.connect() as conn, conn.transaction():
            # A named (server-side) cursor: the range may hold millions of runs.
            with conn.cursor(name="phasegate_reconcile", row_factory=dict_row) as cur:
                cur.execute(LATEST_IN_RANGE_SQL, {"since": since, "until": until})
                while rows := cur.fetchmany(batch):
                    yield [RunRecord.from_row(r) for r in rows]

    def top_terminal_errors(self, within: timedelta = timedelta(days=1), limit: int = 10,
                            error_class: ErrorClass = ErrorClass.TERMINAL
                            ) -> list[tuple[str | None, int]]:
        """The most frequent errors of FAILED attempts of ``error_class`` within ``within``."""
        rows = self.db.run(lambda c: c.execute(
            TOP_ERRORS_SQL, {"error_class": error_class.value, "seconds": within.total_seconds(),
                             "limit": limit}).fetchall())
        return [(r[0], int(r[1])) for r in rows]


def _settle_legacy(conn: psycopg.Connection, function_name: str, run_id: str,
                   attempt: int) -> None:
    """Before a write of an escaped run: move its rows still under pre-encoding keys, and a
    legacy row of another run holding this attempt's key, to their escaped keys. A no-op
    (no statement) for names without ':' or '%': their keys never changed."""
    if not is_escaped(function_name, run_id):
        return
    run = (function_name, run_id, attempt)
    key = make_run_key(*run)
    keys = [key]
    for left in range(MAX_REKEY_ROUNDS, 0, -1):
        conn.execute(REKEY_SQL, {**SQL_ESCAPE_PARAMS, "function_name": function_name,
                                 "run_id": run_id, "run_keys": keys})
        holder = _holder(conn, key)
        if holder is None or holder == run:
            return
        if left == 1:
            raise RunKeyConflict(key, holder)
        keys = _chain(conn, key)  # free the links in the way, the farthest first


def _holder(conn: psycopg.Connection, key: str) -> tuple[str, str, int] | None:
    row = _fetch_one(conn, GET_SQL, {"run_key": key})
    return None if row is None else (row["function_name"], row["run_id"], row["attempt"])


def _chain(conn: psycopg.Connection, key: str) -> list[str]:
    """``key``, then the escaped key its holder wants, then the one that key's holder wants,
    ...: each link can move once the next one has."""
    keys = [key]
    while len(keys) <= MAX_REKEY_ROUNDS and (holder := _holder(conn, keys[-1])) is not None:
        wanted = make_run_key(*holder)
        if wanted in keys:  # the holder is at its own key (or a loop): nothing moves further
            break
        keys.append(wanted)
    return keys


def _start_many_params(starts: Iterable[RunStart]) -> dict[str, list[Any]]:
    """The parameters of ``start_runs``: per ``start_run`` parameter, the array of its
    values, named in the plural (run_keys, attempts, ...); row i of each is start i."""
    rows = [s.params() for s in starts]
    return {f"{name}s": [r[name] for r in rows] for name in rows[0]}


def _fetch_one(conn: psycopg.Connection, statement: str,
               params: Mapping[str, Any]) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchone()


def _fetch_all(conn: psycopg.Connection, statement: str,
               params: Mapping[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchall()
