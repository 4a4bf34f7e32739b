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
from sqlalchemy import create_engine, text

from ledger import redis_layout

JOB_TYPES = ("email.send", "report.render", "billing.sync", "cron.maintenance")

# Deterministic spread of states by id: 70% SUCCEEDED, 10% FAILED, 15% PENDING, 5% RUNNING.
SEED_JOBS = """
INSERT INTO background_job (type, payload, status, attempts, max_attempts, run_at, locked_at,
                            locked_by, last_error, created_at, updated_at)
SELECT (ARRAY['email.send','report.render','billing.sync','cron.maintenance'])[1 + g % 4],
       jsonb_build_object('n', g, 'to', 'user' || (g % 997) || '@example.test'),
       s.status::background_job_status,
       CASE s.status WHEN 'FAILED' THEN 5 WHEN 'PENDING' THEN 0 ELSE 1 + (g % 2) END,
       5,
       t.created + interval '1 second',
       CASE WHEN s.status = 'RUNNING' THEN now() - make_interval(secs => g % 30) END,
       CASE WHEN s.status = 'RUNNING' THEN 'worker-' || (g % 7) END,
       CASE WHEN s.status = 'FAILED' THEN 'ValidationError: payload field ''to'' rejected (' || g || ')' END,
       t.created,
       t.created + make_interval(secs => 1 + g % 30)
FROM generate_series(1, :n) AS g
CROSS JOIN LATERAL (SELECT CASE
        WHEN g % 20 < 14 THEN 'SUCCEEDED'
        WHEN g % 20 < 16 THEN 'FAILED'
        WHEN g % 20 < 19 THEN 'PENDING'
        ELSE 'RUNNING' END AS status) s
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (CAST(:span_seconds AS bigint) * (:n - g) / :n) + 60)
                    AS created) t
"""

# The legacy double send: the same maintenance window enqueued twice.
SEED_DUPLICATE_TICKS = """
INSERT INTO background_job (type, payload, status, attempts, created_at, updated_at)
SELECT 'cron.maintenance', jsonb_build_object('window', w, 'duplicate', d = 2), 'SUCCEEDED', 1,
       now() - make_interval(mins => w * 5), now() - make_interval(mins => w * 5)
FROM generate_series(1, :ticks) AS w, generate_series(1, 2) AS d
"""

RECENT_FINISHED = """
SELECT id, type, status::text, greatest(attempts, 1), updated_at FROM background_job
WHERE updated_at > now() - make_interval(secs => :ttl) ORDER BY id DESC LIMIT :limit
"""


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
            conn.execute(text(SEED_JOBS), {"n": jobs, "span_seconds": int(days * 86400)})
            conn.execute(text(SEED_DUPLICATE_TICKS), {"ticks": duplicate_ticks})
            conn.execute(text("ANALYZE background_job"))
        with engine.connect() as conn:
            rows = conn.execute(text(RECENT_FINISHED), {
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
    """What the application's pre-rollout code wrote for a run (the legacy layout)."""
    at = at or datetime.now(UTC)
    key = redis_layout.status_key(function_name, run_id)
    pipe.hset(key, mapping={
        "status": status, "attempt": attempt,
        "run_key": redis_layout.run_key(function_name, run_id, attempt),
        "updated_at": at.isoformat(),
    })
    pipe.expire(key, redis_layout.STATUS_TTL_SECONDS)
    pipe.zadd(redis_layout.INDEX_KEY, {key: at.timestamp()})
