"""Parity, shadow-read and health checks against real Redis and real Postgres sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis as redis_lib

from checks import Verdict
from ledger.redis_layout import INDEX_KEY, run_key, status_key
from tests.conftest import to_dsn
from tests.integration.checks.conftest import Run, add_runs, ago

SINCE = datetime.now(UTC) - timedelta(hours=1)


def _redis_status(url: str, fn: str, run_id: str, attempt: int, status: str, age: float) -> None:
    at = datetime.now(UTC) - timedelta(seconds=age)
    client = redis_lib.Redis.from_url(url)
    key = status_key(fn, run_id)
    client.hset(key, mapping={"status": status, "attempt": attempt,
                              "run_key": run_key(fn, run_id, attempt),
                              "updated_at": at.isoformat()})
    client.zadd(INDEX_KEY, {key: at.timestamp()})
    client.close()


def _both(db_url: str, redis_url: str, fn: str, run_id: str, attempt: int = 1,
          status: str = "SUCCEEDED", age: float = 600) -> None:
    add_runs(db_url, {"function_name": fn, "run_id": run_id, "attempt": attempt,
                      "status": status, "age": ago(age)})
    _redis_status(redis_url, fn, run_id, attempt, status, age)


def test_parity_passes_when_both_sides_agree(run_check: Run, db_url: str, redis_url: str) -> None:
    _both(db_url, redis_url, "f", "a")
    _both(db_url, redis_url, "f", "b", 2, "FAILED")
    add_runs(db_url, {"function_name": "f", "run_id": "b", "attempt": 1, "status": "FAILED",
                      "age": ago(700)})  # an earlier attempt: Redis keeps only the latest
    r = run_check("parity", redis_url=redis_url, parity_since=SINCE)
    assert r.verdict is Verdict.PASS, r.evidence
    assert "2 Redis status(es) and 2 DB run(s)" in r.summary


def test_parity_tolerates_in_flight_within_grace(run_check: Run, db_url: str, redis_url: str) -> None:
    add_runs(db_url, {"function_name": "f", "run_id": "c", "status": "RUNNING", "age": ago(5)})
    _redis_status(redis_url, "f", "c", 1, "SUCCEEDED", 1)  # Redis saw the finish first
    r = run_check("parity", redis_url=redis_url, parity_since=SINCE, parity_grace_seconds=30)
    assert r.verdict is Verdict.PASS
    assert "1 in flight" in r.summary or "2 in flight" in r.summary


def test_parity_fails_on_each_kind_of_mismatch(run_check: Run, db_url: str, redis_url: str) -> None:
    _both(db_url, redis_url, "f", "ok")
    _redis_status(redis_url, "f", "only-redis", 1, "SUCCEEDED", 600)
    add_runs(db_url, {"function_name": "f", "run_id": "only-db", "age": ago(600)})
    add_runs(db_url, {"function_name": "f", "run_id": "differs", "status": "FAILED", "age": ago(600)})
    _redis_status(redis_url, "f", "differs", 1, "SUCCEEDED", 600)
    r = run_check("parity", redis_url=redis_url, parity_since=SINCE, parity_grace_seconds=30)
    assert r.verdict is Verdict.FAIL
    found = [(e["problem"], e["run_key"]) for e in r.evidence]
    assert len(found) == 3 and set(found) == {("missing in db", "f:only-redis:1"), ("missing in redis", "f:only-db:1"),
                     ("status differs", "f:differs:1")}


def test_parity_compares_redis_writes_of_runs_requested_before_the_window(
        run_check: Run, db_url: str, redis_url: str) -> None:
    # Requested before the window (so not selected on the DB side), finished inside it.
    add_runs(db_url, {"function_name": "f", "run_id": "early", "status": "RUNNING",
                      "age": ago(7200)})
    _redis_status(redis_url, "f", "early", 1, "SUCCEEDED", 600)
    r = run_check("parity", redis_url=redis_url, parity_since=SINCE, parity_grace_seconds=30)
    assert r.verdict is Verdict.FAIL
    assert r.evidence == ({"problem": "status differs", "run_key": "f:early:1",
                           "redis_status": "SUCCEEDED", "db_status": "RUNNING"},)


def test_parity_needs_a_window_and_redis(run_check: Run, redis_url: str) -> None:
    assert "no parity_since" in run_check("parity", redis_url=redis_url).summary
    r = run_check("parity", parity_since=SINCE)
    assert r.verdict is Verdict.FAIL and "needs Redis" in r.summary


def test_shadow_read(run_check: Run, db_url: str, redis_url: str) -> None:
    _both(db_url, redis_url, "f", "a")
    _both(db_url, redis_url, "f", "b", 3, "FAILED")
    assert run_check("shadow_read", redis_url=redis_url).verdict is Verdict.PASS
    add_runs(db_url, {"function_name": "f", "run_id": "a", "attempt": 2, "status": "RUNNING",
                      "age": ago(300)})  # the DB path now answers attempt 2, Redis attempt 1
    r = run_check("shadow_read", redis_url=redis_url)
    assert r.verdict is Verdict.FAIL
    assert r.evidence == ({"run": "f:a", "redis_status": "SUCCEEDED", "redis_attempt": 1,
                           "db_status": "RUNNING", "db_attempt": 2},)


@pytest.fixture
def other_session(db_url: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(to_dsn(db_url), autocommit=True, application_name="app")
    yield conn
    conn.close()


def test_health_idle_in_transaction_and_long_transaction(run_check: Run, db_url: str,
                                                         other_session: psycopg.Connection) -> None:
    assert run_check("health_idle_in_transaction").verdict is Verdict.PASS
    assert run_check("health_long_transactions").verdict is Verdict.PASS
    other_session.execute("BEGIN")
    other_session.execute("SELECT 1")
    threading.Event().wait(0.3)  # idle inside the open transaction
    r = run_check("health_idle_in_transaction", max_idle_in_transaction_seconds=0.1)
    assert r.verdict is Verdict.FAIL and r.evidence[0]["application_name"] == "app"
    r = run_check("health_long_transactions", max_transaction_seconds=0.2)
    assert r.verdict is Verdict.FAIL and r.evidence[0]["application_name"] == "app"
    other_session.execute("ROLLBACK")


def test_health_lock_waiters(run_check: Run, db_url: str, other_session: psycopg.Connection) -> None:
    assert run_check("health_lock_waiters").verdict is Verdict.PASS
    other_session.execute("BEGIN")
    other_session.execute("LOCK TABLE phasegate_flag IN ACCESS EXCLUSIVE MODE")
    waiter = psycopg.connect(to_dsn(db_url), autocommit=True, application_name="waiter")
    t = threading.Thread(target=lambda: waiter.execute("SELECT count(*) FROM phasegate_flag"))
    t.start()
    try:
        for _ in range(100):
            r = run_check("health_lock_waiters", max_lock_waiters=0)
            if r.verdict is Verdict.FAIL:
                break
            threading.Event().wait(0.05)
        assert r.verdict is Verdict.FAIL
        assert r.evidence[0]["application_name"] == "waiter"
        assert r.evidence[0]["blocked_by"]
    finally:
        other_session.execute("ROLLBACK")
        t.join(10)
        waiter.close()


def test_health_replication_lag_without_replicas_passes(run_check: Run) -> None:
    r = run_check("health_replication_lag")
    assert r.verdict is Verdict.PASS and r.summary == "no replicas attached"
