"""A small zero-downtime run: the live workload and pgbench through expand and dual_write
forward and both rollbacks, on real servers; the report, its targets and the picture."""

from __future__ import annotations

import psycopg

from bench.zero_downtime import Step, drive, report, write_png
from demo.seed import seed_baseline
from rollout.environments import Target
from rollout.settings import Settings
from tests.conftest import to_dsn

STEPS = (
    Step("expand", "apply", "expand"),
    Step("dual_write", "apply", "dual_write"),
    Step("rollback dual_write", "rollback", "dual_write", "expand"),
    Step("rollback expand", "rollback", "expand", "baseline"),
)


def test_small_zero_downtime_run(make_db, redis_url, tmp_path) -> None:
    url = make_db("baseline")
    seed_baseline(url, redis_url, jobs=2000, redis_statuses=200, duplicate_ticks=10)
    settings = Settings(flag_ttl_seconds=0.2, lock_timeout_ms=1000, soak_seconds=0,
                        backfill_batch_size=500, lease_seconds=3600)
    target = Target("test", url, redis_url, False, settings)
    segments, records, pg = drive(target, workers=2, rate=80, rest_seconds=0.5,
                                  use_pgbench=True, steps=STEPS, plans_dir=tmp_path / "plans",
                                  pgbench_rate=20, pgbench_chunk_seconds=1)
    rep = report(segments, records, pg, settings.lock_timeout_ms)

    assert [s["segment"] for s in rep["segments"]] == [
        "at_rest", "expand", "dual_write", "rollback dual_write", "rollback expand", "after"]
    assert [s["outcome"] for s in rep["segments"][1:5]] == [
        "gated", "gated", "rolled_back", "rolled_back"]
    assert all(s["ops"] > 0 for s in rep["segments"])
    assert rep["totals"]["failed_writes"] == 0, rep["totals"]["errors"]
    assert rep["targets"]["zero_failed_writes"] and rep["targets"]["every_step_succeeded"]
    assert rep["pgbench"]["transactions"] > 0 and rep["pgbench"]["failed"] == 0
    # The ops recorded while dual-writing reached the run ledger (kept after the rollback).
    with psycopg.connect(to_dsn(url)) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        pgbench_rows = conn.execute(
            "SELECT count(*) FROM background_job WHERE type = 'pgbench.task'").fetchone()[0]
    assert revision.startswith("p0002")  # back at the kit point: expand rolled back
    assert pgbench_rows == pg.summary()["transactions"]  # every logged transaction committed

    png = write_png(tmp_path / "zdt.png", segments, records, pg)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
