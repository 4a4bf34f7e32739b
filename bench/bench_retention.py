"""Retention: the kit's prune vs dropping a time partition, and vs a raw batched delete.

    python -m bench.bench_retention                   # 1M expired rows
    python -m bench.bench_retention --rows 200000

On a database at head, N run-ledger rows 40 days old (plus N/10 recent rows that must
survive) are pruned three ways, each from a fresh copy of the same rows:

* the kit: ``ledger.retention.prune`` (batched ``DELETE ... LIMIT + SKIP LOCKED`` that spares
  open dedupe windows and open dead letters) — the fallback when the table is not
  partitioned, which ``background_function_run`` is not (see bench/README.md);
* raw batched delete: ``DELETE ... WHERE id IN (SELECT id ... LIMIT b)`` until done;
* partition drop: the same rows in a range partition of a table partitioned by
  ``requested_at``, dropped with ``DROP TABLE`` (the raw floor of any retention).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench._common import Comparison, report, servers  # noqa: E402
from bench._zdt_common import Stopwatch  # noqa: E402

INSERT_RUNS = """
INSERT INTO {table} (run_key, function_name, run_id, attempt, requested_at, started_at,
                     finished_at, status)
SELECT :tag || ':' || g, 'bench.fn', :tag || '-' || g, 1, t.at, t.at, t.at,
       'SUCCEEDED'::background_function_run_status
FROM generate_series(1, :n) AS g
CROSS JOIN LATERAL (SELECT now() - make_interval(days => :days, secs => g % 86400) AS at) t
"""
RAW_BATCH = """
DELETE FROM background_function_run WHERE id IN (
    SELECT id FROM background_function_run WHERE requested_at < :cutoff LIMIT :batch)
"""
PARTITIONED = """
CREATE TABLE bench_run_part (LIKE background_function_run INCLUDING DEFAULTS)
    PARTITION BY RANGE (requested_at);
CREATE TABLE bench_run_part_old PARTITION OF bench_run_part
    FOR VALUES FROM ('-infinity') TO (now() - interval '30 days');
CREATE TABLE bench_run_part_new PARTITION OF bench_run_part
    FOR VALUES FROM (now() - interval '30 days') TO ('infinity');
"""


def _fill(engine, table: str, tag: str, n: int, days: int) -> None:  # type: ignore[no-untyped-def]
    # The table name is one of two constants of this module, never input. The partitioned
    # copy has no identity column (LIKE does not copy it): its ids are given.
    sql = INSERT_RUNS.replace("{table}", table)
    if table == "bench_run_part":
        sql = sql.replace("(run_key,", "(id, run_key,").replace("SELECT :tag", "SELECT g, :tag")
    with engine.begin() as conn:
        conn.execute(text(sql), {"tag": tag, "n": n, "days": days})
        conn.execute(text("ANALYZE " + table))


def _count_old(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM background_function_run "
            "WHERE requested_at < now() - interval '30 days'")).scalar() or 0)


def measure(rows: int, batch: int) -> tuple[list[Comparison], dict[str, object]]:
    from ledger import retention

    with servers("head") as srv:
        engine = create_engine(srv.db_url)
        _fill(engine, "background_function_run", "recent", rows // 10, 1)
        _fill(engine, "background_function_run", "kit", rows, 40)
        with Stopwatch() as kit:
            result = retention.prune(engine, 30, batch_size=batch)
        assert result.runs_deleted == rows and _count_old(engine) == 0, result

        _fill(engine, "background_function_run", "raw", rows, 40)
        cutoff = retention.cutoff_for(30)
        with Stopwatch() as raw:
            while True:
                with engine.begin() as conn:
                    deleted = conn.execute(text(RAW_BATCH), {"cutoff": cutoff, "batch": batch}).rowcount
                if deleted < batch:
                    break
        assert _count_old(engine) == 0

        with engine.begin() as conn:
            for stmt in PARTITIONED.split(";"):
                if stmt.strip():
                    conn.execute(text(stmt))
        _fill(engine, "bench_run_part", "part", rows, 40)
        with Stopwatch() as drop, engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_run_part_old"))
        with engine.connect() as conn:
            recent = conn.execute(text("SELECT count(*) FROM background_function_run")).scalar()
        engine.dispose()
    assert recent == rows // 10, "the recent rows survived every prune"
    results = [
        Comparison(f"kit prune of {rows:,} rows (batch {batch})", "DROP of a time partition",
                   rows / kit.seconds, rows / drop.seconds, 1.0, "rows"),
        Comparison(f"kit prune of {rows:,} rows (batch {batch})", "raw batched DELETE",
                   rows / kit.seconds, rows / raw.seconds, 0.7, "rows"),
    ]
    detail = {"rows": rows, "batch": batch, "kit_prune_seconds": round(kit.seconds, 3),
              "raw_batched_delete_seconds": round(raw.seconds, 3),
              "partition_drop_seconds": round(drop.seconds, 4),
              "kit_batches": result.batches,
              "note": "background_function_run is not partitioned at head: the kit's "
                      "retention is the batched-delete fallback"}
    return results, detail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args(argv)
    results, detail = measure(args.rows, args.batch)
    report("retention", results, {"detail": detail})
    print(f"partition drop of {args.rows:,} rows: {detail['partition_drop_seconds']} s; "
          f"kit prune: {detail['kit_prune_seconds']} s; raw batched delete: "
          f"{detail['raw_batched_delete_seconds']} s")
    return 0 if all(r.meets_target for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
