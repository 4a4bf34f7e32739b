"""Preflight refusals, the backfill's throttle and back-off, and the CLI's one-line errors."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from rollout import backfill
from rollout.engine import Rollout
from rollout.errors import PreflightFailed
from rollout.phase import ProgressEvent
from tests.integration.rollout.harness import FAST, apply_through, make_target, phases_of, snapshot

ROOT = Path(__file__).resolve().parents[3]


def test_preflight_refuses_ddl_behind_a_long_transaction(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=200,
                         settings=replace(FAST, max_transaction_seconds=0.5))
    ro = Rollout(target, "rm", plans_dir=tmp_path)
    try:
        ro.ensure_kit()
        with psycopg.connect(target.dsn) as reader:
            reader.execute("SELECT count(*) FROM background_job")  # opens the transaction
            time.sleep(1.0)
            with pytest.raises(PreflightFailed, match="preflight refused expand: .*transaction"):
                ro.apply("expand")
            reader.rollback()
        with psycopg.connect(target.dsn) as conn:
            assert conn.execute("SELECT to_regclass('background_function_run')").fetchone()[0] is None
            refused = conn.execute(
                "SELECT count(*) FROM phasegate_rollout_event WHERE event = 'preflight_refused'").fetchone()[0]
        assert refused == 1
        assert ro.apply("expand").outcome == "gated"  # nothing in the way any more
    finally:
        ro.close()


def test_backfill_holds_its_target_rate_and_reports_progress(make_db, redis_url, tmp_path) -> None:
    rate = 4000.0
    target = make_target(make_db("baseline"), redis_url, jobs=3000,
                         settings=replace(FAST, backfill_rows_per_second=rate, backfill_batch_size=500))
    apply_through(target, "expand", tmp_path)
    events: list[ProgressEvent] = []
    ro = Rollout(target, "rm", plans_dir=tmp_path, on_progress=events.append)
    t0 = time.monotonic()
    try:
        ro.apply("dual_write")
    finally:
        elapsed = time.monotonic() - t0
        ro.close()
    # ~3,000 ids at 4,000 rows/s cannot take less than ~0.6 s: the throttle slept.
    assert elapsed >= 3000 / rate * 0.8
    assert phases_of(snapshot(target))["dual_write"] == "gated"
    # One event before the first batch, one per batch, the last marked finished at the end.
    assert {e.action_id for e in events} == {"dual_write.backfill"}
    assert events[0].done == 0 and not events[0].finished and len(events) >= 3000 // 500
    assert [e.done for e in events] == sorted(e.done for e in events)
    last = events[-1]
    assert last.finished and last.done == last.total >= 3000 and last.rows_per_second > 0
    assert not any(e.finished for e in events[:-1])


def test_backfill_sees_lock_waiters_as_pressure(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=50)
    ro = Rollout(target, "rm", plans_dir=tmp_path)
    st = ro.store.get("dual_write")
    ctx = ro._context(__import__("rollout.phases", fromlist=["PHASES"]).PHASES["dual_write"], "r1", st)
    assert backfill._pressure(ctx) is False
    holder = psycopg.connect(target.dsn)
    holder.execute("LOCK TABLE background_job IN ACCESS EXCLUSIVE MODE")
    waiter_done = threading.Event()

    def wait_for_lock() -> None:
        with psycopg.connect(target.dsn) as conn:
            conn.execute("SELECT count(*) FROM background_job")
        waiter_done.set()

    t = threading.Thread(target=wait_for_lock, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 5
        while not backfill._pressure(ctx) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backfill._pressure(ctx) is True
    finally:
        holder.rollback()
        holder.close()
        t.join(5)
        ro.close()
    assert waiter_done.is_set()


def _invoke(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["invoke", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rollout", "--phase", "expnad", "--env", "t1"), "unknown phase 'expnad'"),
        (("rollout", "--phase", "expand", "--env", "no-such-env"), "unknown environment 'no-such-env'"),
        (("rollout", "--phase", "expand", "--env", "Bad;rm -rf /"), "invalid environment name"),
        (("rollout", "--env", "t1"), "give exactly one of --phase P, --rollback [--to P], --status"),
        (("rollout", "--phase", "expand", "--to", "kit", "--env", "t1"), "--to goes with --rollback"),
        (("plan", "--format", "pdf"), "--format must be md, json or both"),
        (("migrate", "--env", "t1", "--to", "nowhere"), "unknown migration point 'nowhere'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message, make_db, redis_url) -> None:
    env = {"PHASEGATE_T1_DB_URL": make_db("baseline"), "PHASEGATE_T1_REDIS_URL": redis_url}
    out = _invoke(*args, env=env)
    assert out.returncode == 2  # bad input: could not run
    assert "Traceback" not in out.stderr + out.stdout
    lines = [line for line in (out.stderr + out.stdout).splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], lines


def test_cli_unreachable_database_is_one_line_without_password() -> None:
    env = {"PHASEGATE_T2_DB_URL": "postgresql://app:s3cr3t-pw@127.0.0.1:9/nope",
           "PHASEGATE_T2_REDIS_URL": "redis://127.0.0.1:9/0"}
    out = _invoke("rollout", "--status", "--env", "t2", env=env)
    assert out.returncode == 2  # unreachable: could not run
    text = out.stderr + out.stdout
    assert "Traceback" not in text and "s3cr3t-pw" not in text
    assert "cannot reach the database of t2" in text


def test_cli_rollout_status_and_dry_run(make_db, redis_url, tmp_path) -> None:
    env = {"PHASEGATE_T3_DB_URL": make_db("baseline"), "PHASEGATE_T3_REDIS_URL": redis_url,
           "PHASEGATE_CONFIG": str(tmp_path / "none.toml")}
    dry = _invoke("rollout", "--phase", "expand", "--env", "t3", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "expand.migrate.p0003_expand_enums" in dry.stdout and "nothing changes" in dry.stdout
    status = _invoke("rollout", "--status", "--env", "t3", "--format", "json", env=env)
    assert status.returncode == 0, status.stderr
    assert '"status": "pending"' in status.stdout
