"""``CREATE INDEX CONCURRENTLY`` on a large ``background_job`` while the workload runs.

    python -m bench.bench_index_build                 # 2M rows (a 2-core machine)
    python -m bench.bench_index_build --rows 10000000

Seeds N jobs, starts the live workload (``demo/workload.py``, the ledger API as the
application uses it), records ``--rest-seconds`` at rest, then builds an index with
``migrations.safe_ddl``'s statement shape (``CREATE INDEX CONCURRENTLY`` under
``lock_timeout``) and records the workload during the build. The ratio is the workload's
p99 during the build against its p99 at rest, in the same run; failed writes must be zero.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from bench._common import servers  # noqa: E402
from bench._zdt_common import Stopwatch, print_table, write_results  # noqa: E402
from demo.workload import Workload, WorkloadConfig, summarize  # noqa: E402

P99_TARGET = 2.0
BUILD = "CREATE INDEX CONCURRENTLY ix_bench_job_type_created ON background_job (type, created_at)"


def measure(rows: int, rest_seconds: float, workers: int, rate: float,
            lock_timeout_ms: int) -> dict[str, Any]:
    from demo.seed import JOB_TYPES, seed_baseline
    from demo.workload import WORKLOAD_JOB_TYPE

    with servers("baseline") as srv:
        print(f"seeding {rows:,} jobs ...", flush=True)
        seed_baseline(srv.db_url, srv.redis_url, jobs=rows, redis_statuses=2000)
        dsn = srv.db_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE background_job")
        cfg = WorkloadConfig(srv.db_url, srv.redis_url, workers=workers, rate=rate, duration=3600,
                             job_types=(*JOB_TYPES, WORKLOAD_JOB_TYPE))  # drain the backlog
        with Workload(cfg) as wl:
            t0 = time.time()
            time.sleep(rest_seconds)
            t1 = time.time()
            with psycopg.connect(dsn, autocommit=True) as conn, Stopwatch() as build:
                conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")  # an int, not input
                conn.execute(BUILD)
            t2 = time.time()
            time.sleep(1.0)
            records = wl.stop()
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                               "'ix_bench_job_type_created'::regclass").fetchone()
            valid = bool(row and row[0])
    rest, during = summarize(records, t0, t1), summarize(records, t1, t2)
    ratio = during.p99_ms / rest.p99_ms if rest.p99_ms else 0.0
    return {"rows": rows, "build_seconds": round(build.seconds, 3), "index_valid": valid,
            "at_rest": rest.to_dict(), "during_build": during.to_dict(),
            "p99_ratio": round(ratio, 3), "target_p99_ratio": P99_TARGET,
            "lock_timeout_ms": lock_timeout_ms,
            "meets_target": ratio <= P99_TARGET and during.failed_writes == 0
            and during.max_write_ms <= lock_timeout_ms + 100}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rest-seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--lock-timeout-ms", type=int, default=2000)
    args = ap.parse_args(argv)
    res = measure(args.rows, args.rest_seconds, args.workers, args.rate, args.lock_timeout_ms)
    rest, during = res["at_rest"], res["during_build"]
    rows = [[name, s["ops"], s["failed_writes"], s["p50_ms"], s["p99_ms"], s["max_write_ms"],
             s["longest_stall_ms"]] for name, s in (("at rest", rest), ("during CIC", during))]
    print_table(f"CREATE INDEX CONCURRENTLY on {args.rows:,} rows ({res['build_seconds']} s): "
                f"workload p99 {res['p99_ratio']}x at rest (target <= {P99_TARGET}x)",
                ["window", "ops", "failed writes", "p50 ms", "p99 ms", "max write ms",
                 "stall ms"], rows)
    write_results("index_build", res)
    return 0 if res["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
