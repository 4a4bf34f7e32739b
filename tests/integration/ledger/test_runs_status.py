"""Run ledger and the mode-following job status store, on real Postgres and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis as redis_lib

from infra import ephemeral
from ledger.errors import IllegalRunTransition, LedgerWriteFailed
from ledger.models import ErrorClass
from ledger.redis_layout import INDEX_KEY, STATUS_TTL_SECONDS, status_key
from ledger.runs import TOP_ERRORS_SQL, RunStart
from ledger.status import StatusEvent
from tests.conftest import to_dsn
from tests.integration.ledger.conftest import q, set_modes


def test_repeated_start_returns_the_same_row(make_app) -> None:
    runs = make_app("db_only").runs
    first = runs.start("sync", "r1", 1, correlation_id="c1", dispatch_key="k1")
    again = runs.start("sync", "r1", 1, correlation_id="other")
    assert first.created and not again.created
    assert again.run_key == "sync:r1:1" and again.correlation_id == "c1"
    assert again.started_at == runs.get("sync:r1:1").started_at


def test_succeed_and_fail_settle_once(make_app) -> None:
    app = make_app("db_only")
    runs = app.runs
    runs.start("sync", "r1", 1)
    done = runs.succeed("sync:r1:1")
    assert done.status == "SUCCEEDED" and done.finished_at is not None
    assert done.duration_ms is not None and done.duration_ms >= 0
    assert runs.succeed("sync:r1:1").status == "SUCCEEDED"  # a retried call: idempotent
    with pytest.raises(IllegalRunTransition):
        runs.fail("sync:r1:1", ErrorClass.TERMINAL, "late failure")
    with pytest.raises(IllegalRunTransition):
        runs.succeed("sync:missing:1")
    runs.start("sync", "r1", 2)
    failed = runs.fail("sync:r1:2", ErrorClass.RETRIABLE, "TimeoutError: slow")
    assert (failed.status, failed.error_class, failed.terminal_error) == (
        "FAILED", "RETRIABLE", "TimeoutError: slow")
    assert runs.latest("sync", "r1").attempt == 2
    assert q(app.test_db_url, "SELECT run_key, status FROM background_function_run "
             "ORDER BY attempt") == [("sync:r1:1", "SUCCEEDED"), ("sync:r1:2", "FAILED")]


def test_start_many_is_one_batch_and_idempotent(make_app) -> None:
    app = make_app("db_only")
    batch = [RunStart("f", f"r{i}", 1, correlation_id=f"c{i}") for i in range(50)]
    recs = app.runs.start_many(batch + batch[:5])
    assert len(recs) == 50 and all(r.created for r in recs)
    again = app.runs.start_many(batch[:10])
    assert not any(r.created for r in again)
    assert q(app.test_db_url, "SELECT count(*) FROM background_function_run") == [(50,)]


def test_top_terminal_errors_is_one_indexed_query(make_app) -> None:
    app = make_app("db_only")
    for i, err in enumerate(["ValueError: bad"] * 3 + ["KeyError: 'x'"] * 2):
        app.runs.start("f", f"r{i}", 1)
        app.runs.fail(f"f:r{i}:1", ErrorClass.TERMINAL, err)
    app.runs.start("f", "retry", 1)
    app.runs.fail("f:retry:1", ErrorClass.RETRIABLE, "TimeoutError: t")
    assert app.runs.top_terminal_errors() == [("ValueError: bad", 3), ("KeyError: 'x'", 2)]
    with psycopg.connect(to_dsn(app.test_db_url)) as conn:
        conn.execute("SET enable_seqscan = off")  # a 6-row table would be scanned otherwise
        plan = conn.execute("EXPLAIN " + TOP_ERRORS_SQL,
                            {"error_class": "TERMINAL", "seconds": 86400, "limit": 10}).fetchall()
    assert "ix_background_function_run_failed" in " ".join(r[0] for r in plan)


@pytest.mark.parametrize("mode, in_db, in_redis", [
    ("redis_only", False, True), ("dual", True, True), ("db_only", True, False),
])
def test_status_writes_follow_write_mode(make_app, redis_client, mode, in_db, in_redis) -> None:
    app = make_app(mode)
    app.record_run("sync", "r1", outcome="failed", error=TimeoutError("slow"),
                   correlation_id="c1")
    rows = q(app.test_db_url, "SELECT status, error_class FROM background_function_run")
    assert rows == ([("FAILED", "RETRIABLE")] if in_db else [])
    h = redis_client.hgetall(status_key("sync", "r1"))
    if in_redis:
        assert h["status"] == "FAILED" and h["run_key"] == "sync:r1:1"
        assert h["error_class"] == "RETRIABLE" and h["correlation_id"] == "c1"
        assert 0 < redis_client.ttl(status_key("sync", "r1")) <= STATUS_TTL_SECONDS
        assert redis_client.zscore(INDEX_KEY, status_key("sync", "r1")) is not None
    else:
        assert h == {}


def test_redis_only_never_touches_expand_tables(make_app, redis_client) -> None:
    """At the baseline the expand tables and columns do not exist: everything still works."""
    app = make_app("redis_only", point="baseline")
    app.record_run("sync", "r1", outcome="succeeded")
    assert app.read_status("sync", "r1").status == "SUCCEEDED"
    assert app.dispatch("cron.tick").sent
    job = app.enqueue_job("noop", {"a": 1})
    app.runner.register("noop", lambda ctx: ctx.once("eff", lambda conn: 1))
    assert app.run_one().outcome == "succeeded"
    assert q(app.test_db_url, "SELECT status FROM background_job WHERE id = %s",
             (job,)) == [("SUCCEEDED",)]


@pytest.mark.parametrize("write_mode, read_source, expect", [
    ("redis_only", "redis", "redis"), ("dual", "redis", "redis"), ("dual", "db", "db"),
    ("db_only", "db", "db"), ("db_only", "redis", "db"), ("redis_only", "db", "redis"),
])
def test_reads_follow_read_source(make_app, redis_client, write_mode, read_source,
                                  expect) -> None:
    app = make_app("dual")
    app.record_run("sync", "r1", outcome="running")
    # Make the stores disagree, so the answer shows which one was read.
    redis_client.hset(status_key("sync", "r1"), "status", "FROM_REDIS")
    set_modes(app.test_db_url, write_mode, read_source)
    st = app.read_status("sync", "r1")
    assert st.source == expect
    assert st.status == ("FROM_REDIS" if expect == "redis" else "RUNNING")


def test_a_running_process_follows_flag_flips(make_app, redis_client) -> None:
    app = make_app("redis_only")
    app.record_run("f", "a", outcome="succeeded")
    set_modes(app.test_db_url, "dual")
    app.record_run("f", "b", outcome="succeeded")
    set_modes(app.test_db_url, "db_only", "db")
    app.record_run("f", "c", outcome="succeeded")
    assert q(app.test_db_url, "SELECT run_id FROM background_function_run ORDER BY run_id") == [
        ("b",), ("c",)]
    assert sorted(k for k in redis_client.keys("jobstatus:f:*")) == [
        "jobstatus:f:a", "jobstatus:f:b"]


def test_batched_status_writes(make_app, redis_client) -> None:
    app = make_app("dual")
    events = [StatusEvent("f", f"r{i}", correlation_id=f"c{i}") for i in range(20)]
    events.append(StatusEvent("f", "r0", status="SUCCEEDED"))
    app.status.record_many(events)
    assert q(app.test_db_url, "SELECT count(*), count(*) FILTER (WHERE status = 'SUCCEEDED') "
             "FROM background_function_run") == [(20, 1)]
    assert redis_client.hget(status_key("f", "r0"), "status") == "SUCCEEDED"
    assert redis_client.hget(status_key("f", "r19"), "status") == "RUNNING"


def test_database_failure_fails_the_call_in_dual(make_app) -> None:
    app = make_app("dual")
    q(app.test_db_url, "CREATE ROLE ledger_ro LOGIN")
    q(app.test_db_url, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO ledger_ro")
    url = app.test_db_url.replace("phasegate@", "ledger_ro@")
    ro = type(app)(url, _redis_url(app), flag_ttl=0)
    try:
        with pytest.raises(LedgerWriteFailed) as err:
            ro.record_run("f", "r1", outcome="running")
        assert err.value.store == "database"
    finally:
        ro.close()
        q(app.test_db_url, "DROP OWNED BY ledger_ro; DROP ROLE ledger_ro")


def _redis_url(app) -> str:
    kw = app.redis.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/0"


def test_redis_outage_in_dual_loses_nothing_and_reconcile_repairs(make_app) -> None:
    with ephemeral.redis("binaries") as own:
        app = make_app("dual", redis=own.url)
        client = redis_lib.Redis.from_url(own.url, decode_responses=True)
        app.record_run("f", "before", outcome="succeeded")
        own.stop()
        try:
            for i in range(10):
                app.record_run("f", f"during{i}", outcome="failed",
                               error=ValueError("bad input"))
            app.record_run("f", "before", attempt=2, outcome="succeeded")
        finally:
            own.start()
        assert app.status.redis_failures == 22  # 11 runs x (start + finish)
        assert q(app.test_db_url, "SELECT count(*) FROM background_function_run") == [(12,)]
        assert client.hgetall(status_key("f", "during0")) == {}  # Redis restarted empty
        report = app.reconcile(timedelta(hours=1))
        assert (report.checked, report.repaired) == (11, 11)
        for i in range(10):
            h = client.hgetall(status_key("f", f"during{i}"))
            assert (h["status"], h["error_class"]) == ("FAILED", "TERMINAL")
        assert client.hget(status_key("f", "before"), "attempt") == "2"
        assert app.reconcile(timedelta(hours=1)).repaired == 0
        client.close()


def test_reconcile_repairs_drift_only_inside_the_range(make_app, redis_client) -> None:
    app = make_app("dual")
    app.record_run("f", "old", outcome="succeeded")
    app.record_run("f", "new", outcome="succeeded")
    q(app.test_db_url, "UPDATE background_function_run SET requested_at = now() - "
      "interval '3 days' WHERE run_id = 'old'")
    redis_client.hset(status_key("f", "old"), "status", "RUNNING")
    redis_client.hset(status_key("f", "new"), "status", "RUNNING")
    report = app.reconcile(timedelta(days=1))
    assert report.repaired_keys == ("f:new:1",)
    assert redis_client.hget(status_key("f", "new"), "status") == "SUCCEEDED"
    assert redis_client.hget(status_key("f", "old"), "status") == "RUNNING"
    set_modes(app.test_db_url, "db_only", "db")
    assert app.reconcile(datetime.now(UTC) - timedelta(days=5)).skipped_reason


@pytest.mark.fault
@pytest.mark.slow  # its own Postgres: initdb + migrations + restart
def test_write_path_survives_a_postgres_restart(redis_url) -> None:
    """Its own server: restarting the shared one would break other tests' connections."""
    from ledger.app import LedgerApp
    from migrations import api

    with ephemeral.postgres("binaries") as pg:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE restart")
        url = pg.sqlalchemy_url("restart")
        api.upgrade(url, "head")
        set_modes(url, "dual")
        with LedgerApp(url, redis_url, flag_ttl=0) as app:
            app.record_run("f", "before", outcome="succeeded")
            pg.restart()
            app.record_run("f", "after", outcome="succeeded")  # pooled connections broke
            assert q(url, "SELECT count(*) FROM background_function_run") == [(2,)]
