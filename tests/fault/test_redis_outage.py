"""Redis stopped during dual write under the live workload: no run is lost in the database,
the parity check reports the gap, ``invoke reconcile`` repairs it and parity holds again.
Plus ``invoke reconcile``'s own refusals: one line, exit 1, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_lib

from checks import run_checks
from demo.workload import RUN_FUNCTION, Workload, WorkloadConfig
from infra import ephemeral
from ledger.app import LedgerApp
from ledger.errors import ConfigError
from ledger.redis_layout import status_key
from rollout.gates import context
from tests.integration.ledger.conftest import q, set_modes

PROJECT = Path(__file__).resolve().parents[2]


def invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PHASEGATE_CONFIG": "/nonexistent/phasegate.toml", **env}
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(PROJECT), *args],
                          capture_output=True, text=True, timeout=120, env=full)


def _env(db_url: str, redis_url: str) -> dict[str, str]:
    return {"PHASEGATE_OUTAGE_DB_URL": db_url, "PHASEGATE_OUTAGE_REDIS_URL": redis_url}


def _parity(db_url: str, redis_url: str, since: datetime):  # type: ignore[no-untyped-def]
    ctx = context(db_url, redis_url, parity_since=since, parity_grace_seconds=0.5)
    return run_checks(["parity"], ctx)[0]


def test_redis_outage_under_the_workload_is_reported_and_reconciled(make_db) -> None:
    db_url = make_db("head")
    set_modes(db_url, "dual")
    since = datetime.now(UTC) - timedelta(seconds=1)
    with ephemeral.redis("binaries") as own:
        cfg = WorkloadConfig(db_url, own.url, workers=2, rate=120, duration=60, flag_ttl=0.2,
                             mix=(("record_run", 0.6), ("enqueue", 0.2), ("run", 0.2)))
        with Workload(cfg) as wl:
            time.sleep(1.5)
            own.stop()  # Redis is gone (and comes back empty: no persistence)
            time.sleep(2.0)
            own.start()
            time.sleep(1.5)
            records = wl.stop()
        recorded = [r for r in records if r.op == "record_run"]
        # Dual write: the database is authoritative, so no status call failed and every
        # recorded run is in the ledger.
        assert recorded and all(r.ok for r in recorded), [r.error for r in recorded if not r.ok][:3]
        runs = q(db_url, "SELECT count(DISTINCT run_id) FROM background_function_run "
                 "WHERE function_name = %s", (RUN_FUNCTION,))[0][0]
        assert runs == len(recorded)
        time.sleep(0.6)  # past the parity grace

        gap = _parity(db_url, own.url, since)
        assert gap.verdict.value == "fail", gap.summary

        out = invoke("reconcile", "--env", "outage", "--since", "10m", env=_env(db_url, own.url))
        assert out.returncode == 0, out.stderr
        repaired = int(out.stdout.split("repaired ", 1)[1].split()[0])
        assert repaired > 0, out.stdout

        healed = _parity(db_url, own.url, since)
        assert healed.verdict.value == "pass", healed.summary
        # And the repaired hashes say what the ledger says.
        client = redis_lib.Redis.from_url(own.url, decode_responses=True)
        run_id, status = q(db_url, "SELECT run_id, status::text FROM background_function_run "
                           "WHERE function_name = %s ORDER BY id DESC LIMIT 1", (RUN_FUNCTION,))[0]
        assert client.hget(status_key(RUN_FUNCTION, run_id), "status") == status
        client.close()


def test_reconcile_task_repairs_and_refuses_clearly(make_db, redis_url) -> None:
    db_url = make_db("head")
    set_modes(db_url, "dual")
    with LedgerApp(db_url, redis_url, flag_ttl=0) as app:
        for i in range(3):
            app.record_run("f", f"r{i}", outcome="succeeded")
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    env = _env(db_url, redis_url)
    out = invoke("reconcile", "--env", "outage", "--since", "1h", env=env)
    assert out.returncode == 0, out.stderr
    assert "checked 3 run(s)" in out.stdout and "repaired 3" in out.stdout
    assert "repaired f:r0:1" in out.stdout

    bad = invoke("reconcile", "--env", "outage", "--since", "1h", "--until", "2h", env=env)
    lines = [line for line in (bad.stdout + bad.stderr).splitlines() if line.strip()]
    assert bad.returncode == 2 and len(lines) == 1 and "must be before --until" in lines[0], lines
    from cli.reconcile import parse_time

    now = datetime.now(UTC)
    assert parse_time("--since", "90m", now) == now - timedelta(minutes=90)
    assert parse_time("--since", "2026-01-02T03:04:05", now) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for value in ("yesterday; DROP TABLE x", "$(id)", "", "1 fortnight"):
        with pytest.raises(ConfigError, match="--since must be a duration like 2h or 7d"):
            parse_time("--since", value, now)

    set_modes(db_url, "db_only", "db")
    refused = invoke("reconcile", "--env", "outage", "--since", "1h", env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("phasegate: reconcile refused on outage: write_mode=db_only; "
                                      "it repairs Redis only while write_mode=dual (the database "
                                      "is the truth and Redis is still read)")


def test_reconcile_task_says_it_moved_legacy_hashes(make_db, redis_url) -> None:
    """Issue 13: a status the pre-encoding code wrote under an ambiguous key is moved."""
    from demo.seed import write_legacy_status

    db_url = make_db("head")
    set_modes(db_url, "dual")
    with LedgerApp(db_url, redis_url, flag_ttl=0) as app:
        app.record_run("email:send", "user42", outcome="succeeded")
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    pipe = client.pipeline()
    write_legacy_status(pipe, "email:send", "user42", 1, "RUNNING")
    pipe.execute()
    out = invoke("reconcile", "--env", "outage", "--since", "1h", env=_env(db_url, redis_url))
    assert out.returncode == 0, out.stderr
    assert "repaired 1" in out.stdout and "moved 1 status hash(es)" in out.stdout, out.stdout
    assert not client.exists("jobstatus:email:send:user42")
    assert client.hget(status_key("email:send", "user42"), "status") == "SUCCEEDED"
    client.close()


@pytest.mark.parametrize("what", ["database", "redis"])
def test_reconcile_with_a_server_down_is_one_line_without_the_password(what, make_db, redis_url) -> None:
    db_url = make_db("head") if what == "redis" else "postgresql://app:s3cr3t-pw@127.0.0.1:9/nope"
    r_url = "redis://:r3d1s-pw@127.0.0.1:9/0" if what == "redis" else redis_url
    if what == "redis":
        set_modes(db_url, "dual")
        with LedgerApp(db_url, redis_url, flag_ttl=0) as app:
            app.record_run("f", "r1", outcome="succeeded")
    out = invoke("reconcile", "--env", "outage", "--since", "1h", env=_env(db_url, r_url))
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text  # a server down: could not run
    assert "s3cr3t-pw" not in text and "r3d1s-pw" not in text
    assert len([line for line in text.splitlines() if line.strip()]) == 1, text
