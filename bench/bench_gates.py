"""The full gate suite on a big run ledger: how long every check together takes.

Loads ``--rows`` run-ledger rows (default 1 000 000; ``--rows 10000000`` for the 10M
figure, which takes minutes to load on 2 cores) with ``INSERT ... SELECT generate_series``,
plus background jobs (``--jobs``, default a hundredth of the rows; the backfill check probes
one index entry per job, so its time follows this number, about 8 us per job here), all
backfilled, dispatch windows, dead letters and the Redis statuses of
the dual-write window, into a throwaway Postgres + Redis. Then runs every check
(``checks.run_checks``) ``--repeat`` times, interleaved with the raw baseline: one
sequential ``count(*)`` over the run ledger, the cheapest full look at the data. Reports the
suite's median wall time, the ratio to the baseline, each check's median time and verdict,
and whether the target (``--target-seconds``, 5) was met; writes bench/results/gates.json.

    python bench/bench_gates.py [--rows N] [--jobs N] [--repeat 3] [--target-seconds 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from checks import CheckContext, all_checks, run_checks  # noqa: E402
from infra import ephemeral  # noqa: E402
from ledger.redis_layout import INDEX_KEY, status_key  # noqa: E402
from migrations import api  # noqa: E402
from rollout.gates import context  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gates.json"
DAYS = 25  # history spread over 25 days: inside a 30-day retention bound
SECONDARY = "'ix_background_function_run_%'"

# Named loading statements; %(n)s = rows, %(jobs)s = jobs. Every value derives from g.
LOAD = {
    "jobs": """
        INSERT INTO background_job (type, status, attempts, created_at, updated_at, locked_at)
        SELECT 'email', (CASE WHEN g %% 50 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END)::background_job_status,
               1 + g %% 3, now() - interval '2 days' - g * interval '1 second',
               now() - interval '2 days' - g * interval '1 second' + interval '3 seconds',
               now() - interval '2 days' - g * interval '1 second'
        FROM generate_series(1, %(jobs)s) g""",
    "backfilled_runs": """
        INSERT INTO background_function_run (run_key, function_name, run_id, attempt, job_id,
            requested_at, started_at, finished_at, updated_at, status, error_class)
        SELECT j.type || ':job-' || j.id || ':' || greatest(j.attempts, 1), j.type, 'job-' || j.id,
               greatest(j.attempts, 1), j.id, j.created_at, j.locked_at, j.updated_at, j.updated_at,
               (CASE j.status WHEN 'SUCCEEDED' THEN 'SUCCEEDED' ELSE 'FAILED' END)::background_function_run_status,
               CASE WHEN j.status = 'FAILED' THEN 'TERMINAL'::background_error_class END
        FROM background_job j""",
    "runs": """
        INSERT INTO background_function_run (run_key, function_name, run_id, attempt, dispatch_key,
            requested_at, started_at, finished_at, updated_at, duration_ms, status, error_class)
        SELECT 'fn' || (g %% 20) || ':r' || g || ':1', 'fn' || (g %% 20), 'r' || g, 1,
               CASE WHEN g %% 10 = 0 THEN 'cron:' || g END,
               t, t, CASE WHEN g > 50 THEN t + interval '2 seconds' END,
               CASE WHEN g > 50 THEN t + interval '2 seconds' ELSE t END, 2000,
               (CASE WHEN g <= 50 THEN 'RUNNING' WHEN g %% 50 = 0 THEN 'FAILED' ELSE 'SUCCEEDED' END)
                 ::background_function_run_status,
               CASE WHEN g > 50 AND g %% 50 = 0 THEN
                 (CASE WHEN g %% 100 = 0 THEN 'TERMINAL' ELSE 'RETRIABLE' END)::background_error_class END
        FROM generate_series(1, %(n)s) g,
             LATERAL (SELECT now() - g * (interval '1 day' * %(days)s / %(n)s)) AS at(t)""",
    "windows": """
        INSERT INTO background_dispatch_window (dispatch_key, source, window_start, window_end,
            correlation_id, status, created_at, updated_at)
        SELECT dispatch_key, 'cron', requested_at, requested_at + interval '1 minute', 'c' || id,
               'ENQUEUED', requested_at, requested_at
        FROM background_function_run WHERE dispatch_key IS NOT NULL""",
    # A dead letter is born OPEN (p0014's trigger): six in seven are then discarded.
    "dead_letters": """
        INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts, dead_at)
        SELECT id, type, 'TERMINAL', attempts, updated_at
        FROM background_job WHERE status = 'FAILED'""",
    "dead_letters_discarded": """
        UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'bench',
               resolution_reason = 'bench'
        WHERE job_id %% 7 <> 0""",
}


def _secondary_indexes(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'background_function_run' "
        "AND indexname LIKE 'ix_%'").fetchall()]


def load(dsn: str, rows: int, jobs: int) -> dict[str, float]:
    """Fill the ledger; secondary indexes are dropped first and rebuilt after (faster)."""
    timings: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        defs = _secondary_indexes(conn)
        for d in defs:
            name = d.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
            conn.execute(psycopg.sql.SQL("DROP INDEX {}").format(psycopg.sql.Identifier(name)))
        params = {"n": rows - jobs, "jobs": jobs, "days": DAYS}
        for name, statement in LOAD.items():
            started = time.perf_counter()
            conn.execute(statement, params)  # type: ignore[arg-type]
            timings[name] = time.perf_counter() - started
        started = time.perf_counter()
        for d in defs:
            conn.execute(d)  # type: ignore[arg-type] - pg_indexes' own definitions
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - started
    return timings


def seed_redis(dsn: str, redis_url: str, since: datetime) -> int:
    """Redis statuses for every run requested in the dual-write window (what dual-write wrote)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT function_name, run_id, attempt, run_key, status::text, updated_at "
            "FROM background_function_run WHERE requested_at >= %s", (since,)).fetchall()
    client = redis_lib.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    for fn, run_id, attempt, key, status, updated in rows:
        hkey = status_key(fn, run_id)
        pipe.hset(hkey, mapping={"status": status, "attempt": attempt, "run_key": key,
                                 "updated_at": updated.isoformat()})
        pipe.zadd(INDEX_KEY, {hkey: updated.timestamp()})
    pipe.execute()
    client.close()
    return len(rows)


def measure(ctx: CheckContext, dsn: str, repeat: int) -> tuple[list[float], list[float], list[Any]]:
    """Suite and baseline, interleaved so a noisy neighbour slows both alike."""
    ids = list(all_checks())
    suite, baseline, runs = [], [], []
    for _ in range(repeat):
        with psycopg.connect(dsn) as conn:
            started = time.perf_counter()
            conn.execute("SELECT count(*) FROM background_function_run").fetchone()
            baseline.append(time.perf_counter() - started)
        started = time.perf_counter()
        runs.append(run_checks(ids, ctx))
        suite.append(time.perf_counter() - started)
    return suite, baseline, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=None,
                        help="background jobs, all backfilled (default rows / 100)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--target-seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.rows < 1000:
        parser.error("--rows must be at least 1000")
    args.jobs = args.jobs or max(args.rows // 100, 1)
    if not 1 <= args.jobs < args.rows:
        parser.error("--jobs must be between 1 and --rows")
    with ephemeral.postgres() as pg, ephemeral.redis() as rd:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_gates")
        url, dsn = pg.sqlalchemy_url("bench_gates"), pg.dsn("bench_gates")
        api.upgrade(url, "head")
        started = time.perf_counter()
        timings = load(dsn, args.rows, args.jobs)
        since = datetime.now(UTC) - timedelta(hours=1)
        statuses = seed_redis(dsn, rd.url, since)
        load_s = time.perf_counter() - started
        # Settings' defaults, with the budgets this benchmark has always measured against.
        ctx = context(url, rd.url, parity_since=since, backfill_until_id=args.jobs,
                      retention_days=30, triage_budget_ms=50, lease_seconds=3600)
        suite, baseline, runs = measure(ctx, dsn, args.repeat)
    report = _report(args, runs, suite, baseline, load_s, timings, statuses)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    return 0


def _report(args: argparse.Namespace, runs: list[Any], suite: list[float], baseline: list[float],
            load_s: float, timings: dict[str, float], statuses: int) -> dict[str, Any]:
    per_check = {}
    for i, r in enumerate(runs[0]):
        per_check[r.check_id] = {"verdict": r.verdict.value,
                                 "median_ms": round(statistics.median(run[i].duration_ms for run in runs), 2),
                                 "summary": r.summary}
    med, base = statistics.median(suite), statistics.median(baseline)
    return {
        "benchmark": "gates", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "rows": args.rows, "jobs": args.jobs, "redis_statuses": statuses, "repeat": args.repeat,
        "load_seconds": round(load_s, 1), "load_steps_seconds": {k: round(v, 2) for k, v in timings.items()},
        "suite_seconds_median": round(med, 3), "suite_seconds_all": [round(s, 3) for s in suite],
        "baseline": "SELECT count(*) FROM background_function_run (one sequential scan)",
        "baseline_seconds_median": round(base, 3),
        "ratio_suite_to_baseline": round(med / base, 2) if base else None,
        "target_seconds": args.target_seconds, "target_met": med < args.target_seconds,
        "checks": per_check,
    }


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gate suite on {report['rows']:,} rows")
    for col in ("check", "verdict", "median ms"):
        table.add_column(col, justify="right" if col == "median ms" else "left")
    for cid, c in report["checks"].items():
        table.add_row(cid, c["verdict"], f"{c['median_ms']:.1f}")
    console = Console()
    console.print(table)
    console.print(f"suite {report['suite_seconds_median']} s (median of {report['repeat']}), "
                  f"baseline count(*) {report['baseline_seconds_median']} s, ratio "
                  f"{report['ratio_suite_to_baseline']}x; target < {report['target_seconds']} s: "
                  f"{'met' if report['target_met'] else 'NOT met'}; load {report['load_seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
