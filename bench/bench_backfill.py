"""Backfill of history into the run ledger vs one raw ``INSERT ... SELECT`` of the same rows.

    python -m bench.bench_backfill                    # 1M jobs
    python -m bench.bench_backfill --sizes 1000000,10000000

For each size: seed a baseline of N jobs, expand, then time (a) the raw baseline, one
transaction of ``INSERT INTO background_function_run ... SELECT`` plus the dead letters of
the failed jobs, and (b) the rollout's backfill (``rollout.backfill.run``: keyset batches,
a checkpoint per batch, throttle off), emptying the ledger tables between the two. Same
rows, same server, same run. Target: the backfill at least 0.5x the raw throughput.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench._common import Comparison, report, servers  # noqa: E402
from bench._zdt_common import Stopwatch  # noqa: E402

TARGET = 0.5
# The raw baseline: the same rows and columns as rollout/sql/backfill.sql, in one statement each.
RAW_RUNS = """
INSERT INTO background_function_run (
    run_key, function_name, run_id, attempt, job_id, dispatch_key, correlation_id,
    requested_at, started_at, finished_at, duration_ms, status, error_class, terminal_error)
SELECT j.type || '\\:job-' || j.id || ':' || greatest(j.attempts, 1), j.type, 'job-' || j.id,
       greatest(j.attempts, 1), j.id, j.dispatch_key, j.correlation_id,
       j.created_at, coalesce(j.locked_at, j.created_at), j.updated_at,
       greatest(0, (extract(epoch FROM j.updated_at - coalesce(j.locked_at, j.created_at)) * 1000)::int),
       CASE j.status WHEN 'SUCCEEDED' THEN 'SUCCEEDED' ELSE 'FAILED' END::background_function_run_status,
       CASE WHEN j.status = 'FAILED' THEN 'TERMINAL'::background_error_class END,
       CASE WHEN j.status = 'FAILED' THEN left(j.last_error, 2000) END
FROM background_job j WHERE j.status IN ('SUCCEEDED', 'FAILED')
"""
RAW_LETTERS = """
INSERT INTO background_dead_letter (job_id, job_type, payload, error_class, last_error,
                                    attempts, correlation_id, dead_at)
SELECT j.id, j.type, j.payload, 'TERMINAL', left(j.last_error, 2000), j.attempts,
       j.correlation_id, j.updated_at
FROM background_job j WHERE j.status = 'FAILED'
"""
EMPTY = "TRUNCATE background_function_run, background_dead_letter"


def _context(target, engine):  # type: ignore[no-untyped-def]
    import redis as redis_lib

    from rollout.phase import PhaseContext
    from rollout.state import PhaseState, StateStore

    log = logging.LoggerAdapter(logging.getLogger("bench.backfill"), {})
    return PhaseContext(target=target, engine=engine, redis=redis_lib.Redis.from_url(target.redis_url),
                        settings=target.settings, actor="bench", rollout_id="bench",
                        store=StateStore(engine), state=PhaseState("dual_write"), log=log)


def measure(rows: int, batch_size: int) -> tuple[Comparison, dict[str, object]]:
    from demo.seed import seed_baseline
    from migrations import api
    from rollout import backfill
    from rollout.environments import Target
    from rollout.settings import Settings

    with servers("baseline") as srv:
        print(f"seeding {rows:,} jobs ...", flush=True)
        seed_baseline(srv.db_url, srv.redis_url, jobs=rows, redis_statuses=0, duplicate_ticks=0)
        api.upgrade(srv.db_url, "expand")
        engine = create_engine(srv.db_url)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE background_job"))
            finished = conn.execute(text(
                "SELECT count(*) FROM background_job WHERE status IN ('SUCCEEDED','FAILED')")).scalar()
        with Stopwatch() as raw, engine.begin() as conn:
            conn.execute(text(RAW_RUNS))
            conn.execute(text(RAW_LETTERS))
        with engine.begin() as conn:
            conn.execute(text(EMPTY))
        settings = Settings(backfill_batch_size=batch_size, backfill_rows_per_second=0)
        ctx = _context(Target("bench", srv.db_url, srv.redis_url, False, settings), engine)
        with Stopwatch() as sub:
            result = backfill.run(ctx)
        runs = _runs(engine)
        engine.dispose()
    assert runs == finished, f"backfill wrote {runs} runs for {finished} finished jobs"
    cmp = Comparison(f"backfill {rows:,} jobs (batch {batch_size})", "one INSERT ... SELECT",
                     rows / sub.seconds, rows / raw.seconds, TARGET, "rows")
    detail = {"rows": rows, "finished_jobs": finished, "raw_seconds": round(raw.seconds, 3),
              "backfill_seconds": round(sub.seconds, 3), "batches": result.batches,
              "batch_size": batch_size}
    return cmp, detail


def _runs(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM background_function_run")).scalar() or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000", help="comma-separated job counts")
    ap.add_argument("--batch-size", type=int, default=5000)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows, details = [], []
    for n in sizes:
        cmp, detail = measure(n, args.batch_size)
        rows.append(cmp)
        details.append(detail)
    report("backfill", rows, {"runs": details})
    return 0 if all(r.meets_target for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
