"""The SQL of ``background_job``: enqueue, claim, lease, settle, dead-letter and rescue.

Each function is one round trip (or one short transaction) and works at every migration
point: with ``with_ledger*=False`` it never names the expand phase's columns or tables,
which may not exist (or may be being dropped) while ``write_mode`` is ``redis_only``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger.classify import RetryPolicies
from ledger.db import Database
from ledger.models import ErrorClass

_BASE_COLS = "id, type, payload, attempts, max_attempts, locked_by"
_LEDGER_COLS = _BASE_COLS + ", correlation_id, dispatch_key"

ENQUEUE_SQL = ("INSERT INTO background_job (type, payload, max_attempts, run_at) "
               "VALUES (%s, %s, %s, coalesce(%s::timestamptz, now())) RETURNING id")
ENQUEUE_LEDGER_SQL = (
    "INSERT INTO background_job (type, payload, max_attempts, run_at, correlation_id, "
    "dispatch_key) VALUES (%s, %s, %s, coalesce(%s::timestamptz, now()), %s, %s) RETURNING id")
# SKIP LOCKED: concurrent runners each take a different due row instead of queueing on the
# first one's row lock; ORDER BY run_at uses the partial claim index.
CLAIM_TEMPLATE = (
    "UPDATE background_job SET status = 'RUNNING', locked_at = now(), locked_by = %s, "
    "attempts = attempts + 1, updated_at = now() "
    "WHERE id = (SELECT id FROM background_job WHERE status = 'PENDING' AND run_at <= now() "
    "{types} ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {cols}"
)
# Every write after the claim is guarded: only the lease holder of this attempt may write.
HEARTBEAT_SQL = ("UPDATE background_job SET locked_at = now() "
                 "WHERE id = %s AND status = 'RUNNING' AND locked_by = %s AND attempts = %s")
SUCCEEDED_SQL = ("UPDATE background_job SET status = 'SUCCEEDED', locked_at = NULL, "
                 "locked_by = NULL, last_error = NULL, updated_at = now() "
                 "WHERE id = %s AND status = 'RUNNING' AND locked_by = %s AND attempts = %s")
RETRY_SQL = ("UPDATE background_job SET status = 'PENDING', locked_at = NULL, locked_by = NULL, "
             "run_at = now() + make_interval(secs => %s), last_error = %s, updated_at = now() "
             "WHERE id = %s AND status = 'RUNNING' AND locked_by = %s AND attempts = %s")
FAILED_SQL = ("UPDATE background_job SET status = 'FAILED', locked_at = NULL, locked_by = NULL, "
              "last_error = %s, updated_at = now() "
              "WHERE id = %s AND status = 'RUNNING' AND locked_by = %s AND attempts = %s")
DEAD_LETTER_SQL = (
    "INSERT INTO background_dead_letter (job_id, job_type, payload, error_class, last_error, "
    "attempts, correlation_id) VALUES (%s, %s, %s, %s::background_error_class, %s, %s, %s) "
    # At most one OPEN dead letter per job (partial unique index): a repeat is a no-op.
    "ON CONFLICT (job_id) WHERE status = 'OPEN' DO NOTHING")
EXPIRED_TEMPLATE = (
    "SELECT {cols} FROM background_job WHERE status = 'RUNNING' "
    "AND locked_at < now() - make_interval(secs => %s) ORDER BY locked_at LIMIT %s "
    "FOR UPDATE SKIP LOCKED")
REQUEUE_EXPIRED_SQL = ("UPDATE background_job SET status = 'PENDING', locked_at = NULL, "
                       "locked_by = NULL, run_at = now(), last_error = %s, updated_at = now() "
                       "WHERE id = %s")
FAIL_EXPIRED_SQL = ("UPDATE background_job SET status = 'FAILED', locked_at = NULL, "
                    "locked_by = NULL, last_error = %s, updated_at = now() WHERE id = %s")


@dataclass(frozen=True)
class ClaimedJob:
    """A job row as a runner took it (``attempts`` already counts this attempt)."""

    id: int
    type: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str | None = None
    correlation_id: str | None = None
    dispatch_key: str | None = None


def run_id(job_id: int) -> str:
    """The run id of a job's attempts in the run ledger and the Redis status hash."""
    return f"job-{job_id}"


def enqueue(db: Database, job_type: str, payload: Mapping[str, Any] | None = None, *,
            with_ledger_columns: bool, max_attempts: int = 5, run_at: datetime | None = None,
            correlation_id: str | None = None, dispatch_key: str | None = None) -> int:
    """Insert a PENDING job; its id."""
    if with_ledger_columns:
        query = ENQUEUE_LEDGER_SQL
        params: tuple[Any, ...] = (job_type, Jsonb(dict(payload or {})), max_attempts, run_at,
                                   correlation_id, dispatch_key)
    else:
        query, params = ENQUEUE_SQL, (job_type, Jsonb(dict(payload or {})), max_attempts, run_at)
    row = db.run(lambda c: c.execute(query, params).fetchone())
    assert row is not None
    return int(row[0])


def claim(db: Database, worker_id: str, *, with_ledger_columns: bool,
          job_types: Sequence[str] | None = None) -> ClaimedJob | None:
    """Take the oldest due PENDING job (of ``job_types``, if given), or None."""
    query = _claim_sql(with_ledger_columns, bool(job_types))
    params: tuple[Any, ...] = (worker_id, list(job_types)) if job_types else (worker_id,)

    def take(conn: psycopg.Connection) -> dict[str, Any] | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchone()

    # Not retried on a broken connection: the claim may have committed, and re-running it
    # would take a second job (the lost one is rescued when its lease expires). A stale
    # prepared statement is retried: it failed before it ran.
    row = db.run(take, retry_broken=False)
    return None if row is None else ClaimedJob(**row)


@functools.lru_cache(maxsize=8)
def _claim_sql(with_ledger_columns: bool, by_type: bool) -> str:
    cols = _LEDGER_COLS if with_ledger_columns else _BASE_COLS
    types = sql.SQL("AND type = ANY(%s)") if by_type else sql.SQL("")
    return sql.SQL(CLAIM_TEMPLATE).format(types=types, cols=sql.SQL(cols)).as_string()


def _guarded(db: Database, query: str, params: tuple[Any, ...]) -> bool:
    return bool(db.run(lambda c: c.execute(query, params).rowcount))


def finish_succeeded(db: Database, job: ClaimedJob, worker_id: str) -> bool:
    """SUCCEEDED, if this worker still holds the lease of this attempt."""
    return _guarded(db, SUCCEEDED_SQL, (job.id, worker_id, job.attempts))


def retry_later(db: Database, job: ClaimedJob, worker_id: str, delay: float, error: str) -> bool:
    """Back to PENDING, due after ``delay`` seconds, if this worker still holds the lease."""
    return _guarded(db, RETRY_SQL, (delay, error, job.id, worker_id, job.attempts))


def dead_letter(db: Database, job: ClaimedJob, error_class: ErrorClass, error: str, *,
                with_ledger: bool, worker_id: str) -> bool:
    """FAILED plus (with the ledger) an OPEN dead letter, in one transaction."""
    def settle(conn: psycopg.Connection) -> bool:
        with conn.transaction():
            if not conn.execute(FAILED_SQL, (error, job.id, worker_id, job.attempts)).rowcount:
                return False
            if with_ledger:
                conn.execute(DEAD_LETTER_SQL, (
                    job.id, job.type, Jsonb(job.payload), error_class.value, error,
                    job.attempts, job.correlation_id))
            return True

    return bool(db.run(settle))


def rescue(db: Database, lease_seconds: float, policies: RetryPolicies, limit: int, *,
           with_ledger: bool) -> list[ClaimedJob]:
    """Requeue (or dead-letter, when out of attempts) RUNNING jobs with an expired lease."""
    cols = sql.SQL(_LEDGER_COLS if with_ledger else _BASE_COLS)
    query = sql.SQL(EXPIRED_TEMPLATE).format(cols=cols)

    def sweep(conn: psycopg.Connection) -> list[ClaimedJob]:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            expired = [ClaimedJob(**r) for r in cur.execute(query, (lease_seconds, limit))]
            for job in expired:
                _rescue_one(conn, job, policies, with_ledger)
        return expired

    return db.run(sweep)


def _rescue_one(conn: psycopg.Connection, job: ClaimedJob, policies: RetryPolicies,
                with_ledger: bool) -> None:
    error = f"lease expired: worker {job.locked_by} stopped heartbeating at attempt {job.attempts}"
    policy = policies.for_job(job.type, job.max_attempts)
    if policy.should_retry(job.attempts, ErrorClass.RETRIABLE):
        conn.execute(REQUEUE_EXPIRED_SQL, (error, job.id))
        return
    conn.execute(FAIL_EXPIRED_SQL, (error, job.id))
    if with_ledger:
        conn.execute(DEAD_LETTER_SQL, (job.id, job.type, Jsonb(job.payload),
                                       ErrorClass.RETRIABLE.value, error, job.attempts,
                                       job.correlation_id))
