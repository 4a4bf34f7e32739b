"""Order, locking, dry run and status of the rollout engine on real servers."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
import redis as redis_lib

from rollout.engine import Rollout
from rollout.errors import ConfigError, LockHeld, OutOfOrder, RolloutError
from rollout.state import TargetLock
from tests.integration.rollout.harness import make_target


@pytest.fixture
def target(make_db, redis_url):
    return make_target(make_db("baseline"), redis_url, jobs=500)


@pytest.fixture
def ro(target, tmp_path):
    engine = Rollout(target, "alice", plans_dir=tmp_path / "plans")
    yield engine
    engine.close()


@pytest.mark.parametrize("phase", ["dual_write", "cutover", "retention", "contract"])
def test_out_of_order_phase_is_refused_with_the_command_to_run(ro, phase) -> None:
    with pytest.raises(OutOfOrder, match=r"expand is pending.*invoke rollout --env test --phase expand"):
        ro.apply(phase, yes=True)
    with psycopg.connect(ro.target.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM phasegate_rollout_state").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('background_function_run')").fetchone()[0] is None


def test_unknown_phase_is_one_clear_error(ro) -> None:
    with pytest.raises(ConfigError, match="unknown phase 'expnad'; phases in order: expand, dual_write"):
        ro.apply("expnad")


def test_second_rollout_is_refused_naming_the_holder(ro, target) -> None:
    with TargetLock(target.dsn, target.name, "bob@ops"):
        with pytest.raises(LockHeld, match=r"target test is locked by a rollout of role \w+ "
                                           r"\(phasegate-rollout by bob@ops since 20"):
            ro.apply("expand")
    with psycopg.connect(target.dsn) as conn:
        assert conn.execute("SELECT to_regclass('background_function_run')").fetchone()[0] is None
    # The lock is gone with its holder: now it runs.
    ro.apply("expand")


def test_lock_is_released_when_the_holder_dies(target) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, psycopg; c = psycopg.connect(sys.argv[1], autocommit=True); "
         "c.execute('SELECT pg_advisory_lock(%s)', (0x7068617365676174,)); print('locked', flush=True); time.sleep(60)",
         target.dsn], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(LockHeld):
        with TargetLock(target.dsn, target.name, "carol"):
            pass
    holder.kill()
    holder.wait()
    holder.stdout.close()
    with TargetLock(target.dsn, target.name, "carol"):
        pass


def _dump(pg_server, target) -> str:
    dbname = target.db_url.rsplit("/", 1)[1]
    out = subprocess.run([str(pg_server.bin_dir / "pg_dump"), "--no-sync", "-h", "127.0.0.1",
                          "-p", str(pg_server.port), "-U", pg_server.user, dbname],
                         capture_output=True, text=True, check=True)
    # pg_dump writes a random \\restrict key per run; everything else must be identical.
    return "\n".join(line for line in out.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def _redis_state(target) -> dict:
    r = redis_lib.Redis.from_url(target.redis_url)
    state = {k: r.hgetall(k) for k in r.scan_iter(match="jobstatus:*:*")}
    state["__index__"] = r.zrange("jobstatus:index", 0, -1, withscores=True)
    r.close()
    return state


@pytest.mark.parametrize("prepared", [False, True])
def test_dry_run_changes_nothing(ro, target, pg_server, prepared) -> None:
    if prepared:
        ro.apply("expand")
    before, rbefore = _dump(pg_server, target), _redis_state(target)
    out = ro.dry_run("dual_write" if prepared else "expand")
    assert out["actions"] and not any(a["done"] for a in out["actions"])
    assert _dump(pg_server, target) == before
    assert _redis_state(target) == rbefore


def test_status_reports_phases_actor_and_events(ro) -> None:
    ro.apply("expand")
    st = ro.status()
    phases = {p["phase"]: p for p in st["phases"]}
    assert phases["expand"]["status"] == "gated"
    assert phases["expand"]["actor"] == "alice"
    assert phases["expand"]["done"] == phases["expand"]["of"]
    assert phases["dual_write"]["status"] == "pending"
    assert st["point"] == "expand"
    events = [e["event"] for e in st["events"]]
    assert "gate" in events and "completed" in events


def test_refuses_a_database_that_is_not_the_application(make_db, redis_url, tmp_path) -> None:
    from rollout.environments import Target

    empty = Target("test", make_db("empty"), redis_url)
    engine = Rollout(empty, "alice", plans_dir=tmp_path)
    try:
        with pytest.raises(RolloutError, match="no background_job table"):
            engine.apply("expand")
    finally:
        engine.close()


# Two rollouts racing for real (threads), with the refusal audited:
# tests/fault/test_server_faults.py::test_two_rollouts_at_once_one_runs_the_other_is_refused_and_both_are_audited
