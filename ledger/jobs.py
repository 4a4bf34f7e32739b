"""The SQL of ``background_job``: enqueue, claim, lease, settle, dead-letter and rescue.

Each function is one round trip (or one short transaction) and works at every migration
point: with ``with_ledger*=False`` it never names the expand phase's columns or tables,
which may not exist (or may be being dropped) while ``write_mode`` is ``redis_only``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ledger import sqlfiles
from ledger.classify import RetryPolicies
from ledger.db import Database
from ledger.errors import ConfigError, PayloadTooLarge
from ledger.models import ErrorClass

# The payload limit, the one source for enqueue, the claim and the runner: a job queue carries
# references, not documents, and a runaway producer must not take a worker's memory with it.
# Measured as the payload's JSON text in UTF-8 bytes, which is what PostgreSQL sends a worker
# (``octet_length(payload::text)``) and about what the worker holds once decoded; not the
# stored size (``pg_column_size``), which TOAST compression makes small for repetitive text
# (100 MB of one letter is stored in about 1 MB).
MAX_PAYLOAD_BYTES = 1024 * 1024
# The range a configured limit may take: from '{}' (the smallest payload) to the largest
# jsonb PostgreSQL can store (255 MB); anything else is a typo, not a policy.
PAYLOAD_LIMIT_RANGE = (len("{}"), 0x0FFFFFFF)

# Each statement comes in two forms where the expand phase's columns are involved: without
# them (redis_only: they may not exist, or may be being dropped) and with them (_LEDGER).
ENQUEUE_SQL = sqlfiles.query(__file__, "jobs", "enqueue_job")
ENQUEUE_LEDGER_SQL = sqlfiles.query(__file__, "jobs", "enqueue_job_ledger")
# SKIP LOCKED: concurrent runners each take a different due row instead of queueing on the
# first one's row lock; ORDER BY run_at uses the partial claim index.
CLAIM_SQL = sqlfiles.query(__file__, "jobs", "claim_job")
CLAIM_LEDGER_SQL = sqlfiles.query(__file__, "jobs", "claim_job_ledger")
# Every write after the claim is guarded: only the lease holder of this attempt may write.
HEARTBEAT_SQL = sqlfiles.query(__file__, "jobs", "heartbeat_job")
SUCCEEDED_SQL = sqlfiles.query(__file__, "jobs", "job_succeeded")
RETRY_SQL = sqlfiles.query(__file__, "jobs", "retry_job_later")
FAILED_SQL = sqlfiles.query(__file__, "jobs", "job_failed")
DEAD_LETTER_SQL = sqlfiles.query(__file__, "jobs", "open_dead_letter")
EXPIRED_SQL = sqlfiles.query(__file__, "jobs", "expired_jobs")
EXPIRED_LEDGER_SQL = sqlfiles.query(__file__, "jobs", "expired_jobs_ledger")
REQUEUE_EXPIRED_SQL = sqlfiles.query(__file__, "jobs", "requeue_expired_job")
FAIL_EXPIRED_SQL = sqlfiles.query(__file__, "jobs", "fail_expired_job")


@dataclass(frozen=True)
class ClaimedJob:
    """A job row as a runner took it (``attempts`` already counts this attempt)."""

    id: int
    type: str
    attempts: int
    max_attempts: int
    # None when the claim found the payload over the limit (``payload_bytes`` says by how
    # much) and so never sent it, and on rescue, which needs no payload.
    payload: dict[str, Any] | None = None
    payload_bytes: int | None = None
    locked_by: str | None = None
    correlation_id: str | None = None
    dispatch_key: str | None = None


def run_id(job_id: int) -> str:
    """The run id of a job's attempts in the run ledger and the Redis status hash."""
    return f"job-{job_id}"


def payload_limit(value: object) -> int:
    """``value`` as a payload limit in bytes, or a ConfigError saying the allowed range."""
    low, high = PAYLOAD_LIMIT_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"max_payload_bytes must be a whole number of bytes between {low} "
                          f"and {high}, not {value!r}")
    return value


def payload_size(payload: Mapping[str, Any]) -> int:
    """The payload's size as the server will store and send it: its JSON text in UTF-8
    bytes, spelled as jsonb prints it (``", "`` and ``": "``, non-ASCII as itself). Equal to
    ``octet_length(payload::text)`` but for numbers in exponent form (jsonb writes 1e20 out)
    and repeated keys (jsonb keeps the last): the claim's measure in SQL is the authority."""
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def enqueue(db: Database, job_type: str, payload: Mapping[str, Any] | None = None, *,
            with_ledger_columns: bool, max_attempts: int = 5, run_at: datetime | None = None,
            correlation_id: str | None = None, dispatch_key: str | None = None,
            max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> int:
    """Insert a PENDING job; its id. A payload over ``max_payload_bytes`` is refused
    (:class:`PayloadTooLarge`) before anything is sent to the database."""
    query = ENQUEUE_LEDGER_SQL if with_ledger_columns else ENQUEUE_SQL
    body = dict(payload or {})
    size = payload_size(body)
    if size > max_payload_bytes:
        raise PayloadTooLarge(job_type, size, max_payload_bytes)
    # enqueue_job reads only its own parameters; the ledger's two go unused there.
    params = {"type": job_type, "payload": Jsonb(body),
              "max_attempts": max_attempts, "run_at": run_at,
              "correlation_id": correlation_id, "dispatch_key": dispatch_key}
    row = db.run(lambda c: c.execute(query, params).fetchone())
    assert row is not None
    return int(row[0])


def claim(db: Database, worker_id: str, *, with_ledger_columns: bool,
          job_types: Sequence[str] | None = None,
          max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> ClaimedJob | None:
    """Take the oldest due PENDING job (of ``job_types``, if given), or None. The payload's
    size is read in SQL first: over ``max_payload_bytes``, the job comes back with
    ``payload=None`` (and its ``payload_bytes``), so the payload never reaches this process."""
    query = CLAIM_LEDGER_SQL if with_ledger_columns else CLAIM_SQL
    params = {"worker_id": worker_id, "job_types": list(job_types) if job_types else None,
              "max_payload_bytes": max_payload_bytes}

    def take(conn: psycopg.Connection) -> dict[str, Any] | None:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchone()

    # Not retried on a broken connection: the claim may have committed, and re-running it
    # would take a second job (the lost one is rescued when its lease expires). A stale
    # prepared statement is retried: it failed before it ran.
    row = db.run(take, retry_broken=False)
    return None if row is None else ClaimedJob(**row)


def lease_params(job: ClaimedJob, worker_id: str) -> dict[str, Any]:
    """The guard of every write after the claim: this job, this worker, this attempt."""
    return {"job_id": job.id, "worker_id": worker_id, "attempts": job.attempts}


def _guarded(db: Database, query: str, params: Mapping[str, Any]) -> bool:
    return bool(db.run(lambda c: c.execute(query, params).rowcount))


def finish_succeeded(db: Database, job: ClaimedJob, worker_id: str) -> bool:
    """SUCCEEDED, if this worker still holds the lease of this attempt."""
    return _guarded(db, SUCCEEDED_SQL, lease_params(job, worker_id))


def retry_later(db: Database, job: ClaimedJob, worker_id: str, delay: float, error: str) -> bool:
    """Back to PENDING, due after ``delay`` seconds, if this worker still holds the lease."""
    return _guarded(db, RETRY_SQL, {**lease_params(job, worker_id), "delay": delay,
                                     "last_error": error})


def dead_letter(db: Database, job: ClaimedJob, error_class: ErrorClass, error: str, *,
                with_ledger: bool, worker_id: str) -> bool:
    """FAILED plus (with the ledger) an OPEN dead letter, in one transaction."""
    def settle(conn: psycopg.Connection) -> bool:
        with conn.transaction():
            failed = {**lease_params(job, worker_id), "last_error": error}
            if not conn.execute(FAILED_SQL, failed).rowcount:
                return False
            if with_ledger:
                conn.execute(DEAD_LETTER_SQL, _dead_letter_params(job, error_class, error))
            return True

    return bool(db.run(settle))


def rescue(db: Database, lease_seconds: float, policies: RetryPolicies, limit: int, *,
           with_ledger: bool) -> list[ClaimedJob]:
    """Requeue (or dead-letter, when out of attempts) RUNNING jobs with an expired lease."""
    query = EXPIRED_LEDGER_SQL if with_ledger else EXPIRED_SQL
    params = {"lease_seconds": lease_seconds, "limit": limit}

    def sweep(conn: psycopg.Connection) -> list[ClaimedJob]:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            expired = [ClaimedJob(**r) for r in cur.execute(query, params)]
            for job in expired:
                _rescue_one(conn, job, policies, with_ledger)
        return expired

    return db.run(sweep)


def _rescue_one(conn: psycopg.Connection, job: ClaimedJob, policies: RetryPolicies,
                with_ledger: bool) -> None:
    error = f"lease expired: worker {job.locked_by} stopped heartbeating at attempt {job.attempts}"
    policy = policies.for_job(job.type, job.max_attempts)
    params = {"job_id": job.id, "last_error": error}
    if policy.should_retry(job.attempts, ErrorClass.RETRIABLE):
        conn.execute(REQUEUE_EXPIRED_SQL, params)
        return
    conn.execute(FAIL_EXPIRED_SQL, params)
    if with_ledger:
        conn.execute(DEAD_LETTER_SQL, _dead_letter_params(job, ErrorClass.RETRIABLE, error))


def _dead_letter_params(job: ClaimedJob, error_class: ErrorClass, error: str) -> dict[str, Any]:
    # No payload: open_dead_letter copies the job's inside the database (it may be one the
    # claim refused to load, and a rescued job's was never read).
    return {"job_id": job.id, "job_type": job.type,
            "error_class": error_class.value, "last_error": error, "attempts": job.attempts,
            "correlation_id": job.correlation_id}
