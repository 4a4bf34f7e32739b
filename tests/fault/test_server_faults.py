"""Server faults under a running rollout, and concurrent operators.

* PostgreSQL restarted (``pg_ctl restart -m fast``) while the backfill runs: the CLI stops
  with one line, nothing is rolled back or half-applied, the same command resumes.
* The rollout lock's session killed mid-phase: the rollout stops at its next step.
* Two rollouts at once, a requeue racing a discard: one outcome, the other refused with a
  reason, both audited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from infra import ephemeral
from ledger.classify import RetryPolicies, RetryPolicy
from ledger.errors import DeadLetterNotOpen
from migrations import api as migrations_api
from rollout.engine import Rollout
from rollout.errors import LockHeld, LockLost
from rollout.state import APP_NAME_PREFIX
from tests.integration.ledger.conftest import make_app, q  # noqa: F401 (fixture)
from tests.integration.rollout.harness import (
    FAST,
    apply_through,
    flags_of,
    make_target,
    phases_of,
    snapshot,
)

PROJECT = Path(__file__).resolve().parents[2]
THROTTLED = replace(FAST, backfill_batch_size=200, backfill_rows_per_second=2000)


def _backfill_started(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT checkpoint FROM phasegate_rollout_state WHERE phase = 'dual_write'").fetchone()
    cp = row[0] if row else {}
    return "backfill_start_id" in cp and cp["backfill_after_id"] > cp["backfill_start_id"]


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _toml(path: Path, settings) -> Path:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    lines = ["[settings]", *(f"{k} = {v!r}" for k, v in asdict(settings).items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow  # its own PostgreSQL (initdb), a seeded target, two CLI runs
def test_postgres_restart_mid_backfill_stops_in_one_line_and_resumes(redis_url, tmp_path) -> None:
    with ephemeral.postgres("binaries") as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE restart")
        url = pg.sqlalchemy_url("restart")
        migrations_api.upgrade(url, "baseline")
        target = make_target(url, redis_url, jobs=4000, settings=THROTTLED)
        apply_through(target, "expand", tmp_path)
        env = {**os.environ, "PHASEGATE_PGR_DB_URL": url, "PHASEGATE_PGR_REDIS_URL": redis_url,
               "PHASEGATE_LOG_LEVEL": "WARNING",  # only the one error line on stderr
               "PHASEGATE_CONFIG": str(_toml(tmp_path / "phasegate.toml", THROTTLED))}
        cmd = [sys.executable, "-m", "invoke", "-r", str(PROJECT), "rollout", "--phase", "dual_write",
               "--env", "pgr"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: _backfill_started(target.dsn))
        pg.restart()
        out, err = proc.communicate(timeout=120)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1, lines  # a lost server: could not run
        assert "Traceback" not in out + err
        assert lines[0].startswith("phasegate: dual_write: interrupted at dual_write.backfill: lost ")
        assert "run the same command again to resume" in lines[0]
        mid = snapshot(target)
        assert phases_of(mid)["dual_write"] == "applying"  # stopped where it was ...
        assert flags_of(mid)["write_mode"] == "dual"  # ... and not rolled back
        # (The 'interrupted' event is best effort: the server may still be down when it is written.)

        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        end = snapshot(target)
        assert phases_of(end)["dual_write"] == "gated"
        assert q(url, "SELECT count(*) FROM phasegate_rollout_event WHERE event = 'resumed'") == [(1,)]
        # Every finished job that existed before dual write has exactly one backfilled run.
        assert q(url, "SELECT count(*) FROM background_job j WHERE j.status IN ('SUCCEEDED', 'FAILED') "
                 "AND (SELECT count(*) FROM background_function_run r WHERE r.run_id = 'job-' || j.id) <> 1") == [(0,)]


def test_lock_session_killed_mid_phase_stops_the_rollout_and_it_resumes(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=3000, settings=THROTTLED)
    apply_through(target, "expand", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")

    def kill_lock_session() -> None:
        _wait_for(lambda: _backfill_started(target.dsn))
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND application_name LIKE %s",
                         (APP_NAME_PREFIX + "%",))

    killer = threading.Thread(target=kill_lock_session, daemon=True)
    killer.start()
    try:
        with pytest.raises(LockLost, match="interrupted at dual_write.backfill: lost the rollout lock"):
            ro.apply("dual_write")
        killer.join(10)
        mid = snapshot(target)
        assert phases_of(mid)["dual_write"] == "applying" and flags_of(mid)["write_mode"] == "dual"
        assert ro.apply("dual_write").outcome == "gated"
    finally:
        ro.close()
    events = q(target.db_url, "SELECT event FROM phasegate_rollout_event WHERE phase = 'dual_write' ORDER BY id")
    names = [e[0] for e in events]
    assert "interrupted" in names and "resumed" in names and "auto_rollback" not in names


def test_two_rollouts_at_once_one_runs_the_other_is_refused_and_both_are_audited(
        make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=300)
    setup = Rollout(target, "setup", plans_dir=tmp_path)
    setup.ensure_kit()  # a refusal is recorded in the kit's event log, so it must exist
    setup.close()
    barrier, results = threading.Barrier(2), {}

    def run(actor: str) -> None:
        engine = Rollout(target, actor, plans_dir=tmp_path / actor)
        barrier.wait()
        try:
            results[actor] = engine.apply("expand").outcome
        except LockHeld as exc:
            results[actor] = exc
        finally:
            engine.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    winner = next(a for a, v in results.items() if v == "gated")
    loser = next(a for a, v in results.items() if isinstance(v, LockHeld))
    assert f"by {winner} since" in str(results[loser])
    rows = q(target.db_url, "SELECT actor, event, outcome, detail->>'holder' FROM phasegate_rollout_event "
             "WHERE event IN ('started', 'lock_refused', 'completed') ORDER BY id")
    assert (winner, "started", None, None) in rows and (winner, "completed", "gated", None) in rows
    refused = [r for r in rows if r[1] == "lock_refused"]
    assert len(refused) == 1 and refused[0][0] == loser and f"by {winner}" in refused[0][3]


def test_requeue_racing_discard_has_one_outcome_and_both_are_audited(make_app) -> None:  # noqa: F811
    app = make_app("dual", policies=RetryPolicies(default=RetryPolicy(max_attempts=1)), pool_size=16)
    app.runner.register("email", lambda ctx: (_ for _ in ()).throw(ValueError("bounced")))
    app.enqueue_job("email", {"to": "x"})
    app.runner.run_until_empty()
    dl_id = q(app.test_db_url, "SELECT id FROM background_dead_letter")[0][0]
    barrier, results = threading.Barrier(8), []

    def go(i: int) -> None:
        barrier.wait()
        try:
            if i % 2:
                results.append(("requeue", app.dead_letters.requeue(dl_id, f"op{i}", "fixed")))
            else:
                results.append(("discard", app.dead_letters.discard(dl_id, f"op{i}", "obsolete")))
        except DeadLetterNotOpen as exc:
            results.append(("refused", exc))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [kind for kind, _ in results if kind != "refused"]
    assert len(won) == 1 and len(results) == 8
    status = q(app.test_db_url, "SELECT status::text FROM background_dead_letter")[0][0]
    assert status == ("REQUEUED" if won[0] == "requeue" else "DISCARDED")
    live = q(app.test_db_url, "SELECT count(*) FROM background_job WHERE status IN ('PENDING', 'RUNNING')")[0][0]
    assert live == (1 if won[0] == "requeue" else 0)
    assert all(f"is {status}, not OPEN" in str(exc) for kind, exc in results if kind == "refused")
    audit = q(app.test_db_url, "SELECT action, outcome, detail->>'status' FROM background_operator_audit ORDER BY id")
    assert sorted(o for _, o, _ in audit) == ["ok"] + ["refused"] * 7
    assert {a for a, o, _ in audit if o == "refused"} <= {"requeue", "discard"}
    assert all(s == status for _, o, s in audit if o == "refused")
