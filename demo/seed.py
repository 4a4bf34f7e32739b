"""A realistic pre-rollout baseline to demo and test against.

Jobs in every state spread over the last ``days`` days (so retention has history to prune),
RUNNING jobs in flight (their lease expires unless a runner heartbeats or rescues them), duplicate cron ticks (the legacy double send), and the
legacy Redis status hashes for the recent runs (``ledger/redis_layout.py``).
Rows are generated server-side (``INSERT ... SELECT generate_series``): 100k rows take well
under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis as redis_lib
from sqlalchemy import create_engine

from ledger import redis_layout, sqlfiles

JOB_TYPES = ("email.send", "report.render", "billing.sync", "cron.maintenance")

SEED_JOBS = sqlfiles.query(__file__, "seed", "seed_jobs")
SEED_DUPLICATE_TICKS = sqlfiles.query(__file__, "seed", "seed_duplicate_ticks")
ANALYZE_JOBS = sqlfiles.query(__file__, "seed", "analyze_jobs")
RECENT_FINISHED = sqlfiles.query(__file__, "seed", "recent_finished_jobs")


@dataclass(frozen=True)
class SeedResult:
    jobs: int
    duplicate_ticks: int
    redis_statuses: int


def seed_baseline(db_url: str, redis_url: str, *, jobs: int = 100_000, days: float = 60.0,
                  redis_statuses: int = 20_000, duplicate_ticks: int = 200) -> SeedResult:
    """Fill a baseline database (and its Redis) with a realistic history."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            sqlfiles.execute(conn, SEED_JOBS, {"n": jobs, "span_seconds": int(days * 86400)})
            sqlfiles.execute(conn, SEED_DUPLICATE_TICKS, {"ticks": duplicate_ticks})
            sqlfiles.execute(conn, ANALYZE_JOBS, {})
        with engine.connect() as conn:
            rows = sqlfiles.execute(conn, RECENT_FINISHED, {
                "ttl": redis_layout.STATUS_TTL_SECONDS, "limit": redis_statuses}).all()
    finally:
        engine.dispose()
    r = redis_lib.Redis.from_url(redis_url)
    try:
        pipe = r.pipeline(transaction=False)
        for i, (job_id, job_type, status, attempt, updated_at) in enumerate(rows, 1):
            write_legacy_status(pipe, job_type, f"job-{job_id}", attempt, status, updated_at)
            if i % 2000 == 0:
                pipe.execute()
        pipe.execute()
    finally:
        r.close()
    return SeedResult(jobs, duplicate_ticks * 2, len(rows))


def write_legacy_status(pipe: redis_lib.client.Pipeline, function_name: str, run_id: str,
                        attempt: int, status: str, at: datetime | None = None) -> None:
    """What the application's pre-rollout code wrote for a run (the legacy layout: names
    not escaped, so for names without ':' or '%' the keys the ledger writes today)."""
    at = at or datetime.now(UTC)
    key = redis_layout.legacy_status_key(function_name, run_id)
    pipe.hset(key, mapping={
        "status": status, "attempt": attempt,
        "run_key": redis_layout.legacy_run_key(function_name, run_id, attempt),
        "updated_at": at.isoformat(),
    })
    pipe.expire(key, redis_layout.STATUS_TTL_SECONDS)
    pipe.zadd(redis_layout.INDEX_KEY, {key: at.timestamp()})
