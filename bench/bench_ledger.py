"""Ledger write-path benchmarks, as ratios against raw baselines in the same run.

    python -m bench.bench_ledger [--quick]

* dispatch registration (db_only) vs a bare ``INSERT ... ON CONFLICT DO NOTHING`` into the
  same table; in dual, vs that insert plus a bare ``SET NX``;
* run-ledger start vs a bare insert into ``background_function_run``;
* dual-written status (run ledger + Redis hash) vs a bare insert plus a bare ``HSET``;
* batched: ``RunLedger.start_many`` and ``JobStatusStore.record_many`` (100 rows) vs a bare
  multi-row insert (plus one pipelined ``HSET`` per row for the dual write).

Writes ``bench/results/ledger.json``. Targets: dispatch >= 0.7x; dual status cost <= 1.3x
(ratio >= 0.77); batched >= 0.7x.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import psycopg
import redis as redis_lib
from psycopg import sql
from sqlalchemy import create_engine, pool

from bench._common import Comparison, compare, report, servers
from ledger.app import LedgerApp
from ledger.flags import WRITE_MODE, set_flag
from ledger.runs import RunStart
from ledger.status import StatusEvent

T0 = datetime(2030, 1, 1, tzinfo=UTC)
BATCH = 100
DUAL_COST_TARGET = 1 / 1.3

BARE_DISPATCH = ("INSERT INTO background_dispatch_window (dispatch_key, source, window_start, "
                 "window_end, correlation_id) VALUES (%s, %s, %s, %s, %s) "
                 "ON CONFLICT (dispatch_key) DO NOTHING")
BARE_RUN = ("INSERT INTO background_function_run (run_key, function_name, run_id, attempt, "
            "correlation_id, started_at) VALUES (%s, %s, %s, %s, %s, now()) "
            "ON CONFLICT (run_key) DO NOTHING")


def _bare_multi_run(rows: int) -> sql.Composed:
    values = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s, now())")] * rows)
    return sql.SQL("INSERT INTO background_function_run (run_key, function_name, run_id, "
                   "attempt, correlation_id, started_at) VALUES {} "
                   "ON CONFLICT (run_key) DO NOTHING").format(values)


def _set_mode(app: LedgerApp, mode: str) -> None:
    engine = create_engine(app.db.url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        set_flag(conn, WRITE_MODE, mode, "bench")
    engine.dispose()
    app.flags.invalidate()


def run(n: int, batches: int, repeats: int) -> list[Comparison]:
    with servers() as srv:
        app = LedgerApp(srv.db_url, srv.redis_url, flag_ttl=60.0, windows={"b": 1})
        raw = psycopg.connect(srv.db_url.replace("postgresql+psycopg", "postgresql"),
                              autocommit=True)
        rds = redis_lib.Redis.from_url(srv.redis_url)
        try:
            return _measure(app, raw, rds, n, batches, repeats)
        finally:
            raw.close()
            rds.close()
            app.close()


def _measure(app: LedgerApp, raw: psycopg.Connection, rds: redis_lib.Redis, n: int,
             batches: int, repeats: int) -> list[Comparison]:
    def bare_dispatch(i: int) -> None:
        at = T0 + timedelta(seconds=i)
        raw.execute(BARE_DISPATCH, (f"bare@{i}", "bare", at, at, "cid"))

    def bare_dispatch_nx(i: int) -> None:
        bare_dispatch(i + 10_000_000)  # keys distinct from bare_dispatch's
        rds.set(f"dispatch:bare@{i}", "cid", nx=True, ex=60)

    def bare_run(i: int) -> None:
        raw.execute(BARE_RUN, (f"bare:{i}:1", "bare", str(i), 1, "cid"))

    def bare_run_hset(i: int) -> None:
        bare_run(i + 10_000_000)
        rds.hset(f"jobstatus:bare:{i}", mapping={"status": "RUNNING", "attempt": "1"})

    multi = _bare_multi_run(BATCH)

    def bare_batch(i: int) -> None:
        raw.execute(multi, [v for j in range(BATCH)
                            for v in (f"bm:{i}:{j}:1", "bm", f"{i}-{j}", 1, "cid")])

    def bare_batch_hset(i: int) -> None:
        bare_batch(i + 10_000_000)
        pipe = rds.pipeline(transaction=False)
        for j in range(BATCH):
            pipe.hset(f"jobstatus:bm:{i}-{j}", mapping={"status": "RUNNING", "attempt": "1"})
        pipe.execute()

    out: list[Comparison] = []
    _set_mode(app, "db_only")
    out.append(compare("dispatch register (db_only)", "bare INSERT ON CONFLICT DO NOTHING",
                       bare_dispatch,
                       lambda i: app.dispatcher.register("b", T0 + timedelta(seconds=i)),
                       n=n, repeats=repeats, target=0.7))
    out.append(compare("run ledger start", "bare INSERT ON CONFLICT DO NOTHING", bare_run,
                       lambda i: app.runs.start("f", str(i)), n=n, repeats=repeats, target=0.7))
    out.append(compare(f"run ledger start_many ({BATCH} rows)", "bare multi-row INSERT",
                       bare_batch,
                       lambda i: app.runs.start_many(
                           [RunStart("fm", f"{i}-{j}") for j in range(BATCH)]),
                       n=batches, repeats=repeats, target=0.7, chunk=1, per_call=BATCH,
                       unit="rows"))
    _set_mode(app, "dual")
    out.append(compare("dispatch register (dual)", "bare INSERT + SET NX", bare_dispatch_nx,
                       lambda i: app.dispatcher.register("b", T0 + timedelta(days=400, seconds=i)),
                       n=n, repeats=repeats, target=0.7))
    out.append(compare("status start (dual)", "bare INSERT + HSET", bare_run_hset,
                       lambda i: app.status.start("fd", str(i)), n=n, repeats=repeats,
                       target=DUAL_COST_TARGET))
    out.append(compare(f"status record_many (dual, {BATCH})", "bare multi-row INSERT + HSETs",
                       bare_batch_hset,
                       lambda i: app.status.record_many(
                           [StatusEvent("fdm", f"{i}-{j}") for j in range(BATCH)]),
                       n=batches, repeats=repeats, target=0.7, chunk=1, per_call=BATCH,
                       unit="rows"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args()
    n, batches, repeats = (200, 10, 3) if args.quick else (1000, 40, 5)
    rows = run(n, batches, repeats)
    path = report("ledger", rows, {"single_ops_per_run": n, "batches_per_run": batches,
                                   "batch_rows": BATCH, "repeats": repeats})
    print(f"written {path}")
    return 0 if all(r.meets_target for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
