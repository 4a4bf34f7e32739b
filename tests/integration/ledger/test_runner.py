"""The job runner: claims, leases, retries, dead letters, effects, on real servers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from ledger.classify import RetryPolicies, RetryPolicy, Terminal
from ledger.runner import JobContext
from tests.conftest import to_dsn
from tests.integration.ledger.conftest import q

FAST = RetryPolicies(default=RetryPolicy(max_attempts=3, base_seconds=0.0, cap_seconds=0.0))
EFFECT_TABLE = ("CREATE TABLE test_effect (id bigint GENERATED ALWAYS AS IDENTITY, "
                "job_id bigint, attempt int, worker text)")


def _drain(app, limit: int = 50) -> list:
    return app.runner.run_until_empty(max_jobs=limit)


def test_handler_failing_after_its_effect_is_retried_and_the_effect_happens_once(
        make_app) -> None:
    app = make_app("dual", policies=FAST)
    q(app.test_db_url, EFFECT_TABLE)
    calls: list[int] = []

    def flaky(ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        ctx.once("email:42", lambda conn: conn.execute(
            "INSERT INTO test_effect (job_id, attempt) VALUES (%s, %s)", (ctx.job_id, ctx.attempt)))
        if ctx.attempt < 3:
            raise TimeoutError("smtp timed out after sending")  # retriable, after the effect

    app.runner.register("email", flaky)
    job = app.enqueue_job("email", {"to": "x"})
    outcomes = [o.outcome for o in _drain(app)]
    assert outcomes == ["retry", "retry", "succeeded"] and calls == [1, 2, 3]
    assert q(app.test_db_url, "SELECT job_id, attempt FROM test_effect") == [(job, 1)]
    assert q(app.test_db_url, "SELECT attempt, status, error_class FROM background_function_run "
             "ORDER BY attempt") == [(1, "FAILED", "RETRIABLE"), (2, "FAILED", "RETRIABLE"),
                                     (3, "SUCCEEDED", None)]
    assert q(app.test_db_url, "SELECT count(*) FROM background_job_effect") == [(1,)]


def test_effect_rolls_back_with_its_key_when_it_raises(make_app) -> None:
    app = make_app("db_only", policies=FAST)
    q(app.test_db_url, EFFECT_TABLE)

    def half(ctx: JobContext) -> None:
        def effect(conn) -> None:
            conn.execute("INSERT INTO test_effect (job_id, attempt) VALUES (%s, %s)",
                         (ctx.job_id, ctx.attempt))
            if ctx.attempt == 1:
                raise ConnectionError("died inside the effect")

        ctx.once("pay:1", effect)

    app.runner.register("pay", half)
    app.enqueue_job("pay")
    assert [o.outcome for o in _drain(app)] == ["retry", "succeeded"]
    assert q(app.test_db_url, "SELECT attempt FROM test_effect") == [(2,)]


def test_terminal_error_is_dead_lettered_at_once(make_app) -> None:
    app = make_app("dual", policies=FAST)

    def bad(ctx: JobContext) -> None:
        raise ValueError("payload has no 'to'")

    app.runner.register("email", bad)
    job = app.enqueue_job("email", {"oops": 1}, correlation_id="cid-9")
    assert [o.outcome for o in _drain(app)] == ["dead"]
    assert q(app.test_db_url, "SELECT status, attempts FROM background_job") == [("FAILED", 1)]
    assert q(app.test_db_url, "SELECT job_id, error_class, attempts, correlation_id, status "
             "FROM background_dead_letter") == [(job, "TERMINAL", 1, "cid-9", "OPEN")]


def test_retriable_errors_exhaust_max_attempts_per_job_type(make_app) -> None:
    policies = RetryPolicies(by_type={"sync": RetryPolicy(max_attempts=2, base_seconds=0)},
                             default=RetryPolicy(max_attempts=4, base_seconds=0))
    app = make_app("db_only", policies=policies)

    def down(ctx: JobContext) -> None:
        raise ConnectionError("upstream down")

    app.runner.register("sync", down)
    app.runner.register("other", down)
    app.enqueue_job("sync")
    app.enqueue_job("other")
    outcomes = [(o.job_type, o.outcome) for o in _drain(app)]
    assert outcomes.count(("sync", "retry")) == 1 and ("sync", "dead") in outcomes
    assert outcomes.count(("other", "retry")) == 3 and ("other", "dead") in outcomes
    assert q(app.test_db_url, "SELECT job_type, attempts, error_class FROM "
             "background_dead_letter ORDER BY job_type") == [
        ("other", 4, "RETRIABLE"), ("sync", 2, "RETRIABLE")]


def test_retry_waits_for_its_backoff(make_app) -> None:
    app = make_app("db_only", policies=RetryPolicies(
        default=RetryPolicy(max_attempts=3, base_seconds=3600, cap_seconds=3600)))
    app.runner.register("t", lambda ctx: (_ for _ in ()).throw(TimeoutError("x")))
    app.enqueue_job("t")
    first = app.run_one()
    assert first.outcome == "retry" and 0 <= first.retry_in <= 3600
    assert app.run_one() is None  # not due yet
    assert q(app.test_db_url, "SELECT status, run_at > now() OR %s < 1 FROM background_job",
             (first.retry_in,)) == [("PENDING", True)]


def test_redis_only_dead_letter_is_the_legacy_failed_job(make_app) -> None:
    app = make_app("redis_only", policies=FAST)
    app.runner.register("t", lambda ctx: (_ for _ in ()).throw(Terminal("no")))
    app.enqueue_job("t")
    assert app.run_one().outcome == "dead"
    assert q(app.test_db_url, "SELECT status FROM background_job") == [("FAILED",)]
    assert q(app.test_db_url, "SELECT count(*) FROM background_dead_letter") == [(0,)]


def test_correlation_id_flows_into_the_attempt_and_logs(make_app, caplog) -> None:
    from ledger.logs import CorrelationFilter

    app = make_app("dual", policies=FAST)
    seen: list[str] = []
    app.runner.register("t", lambda ctx: seen.append(ctx.correlation_id))
    app.enqueue_job("t", correlation_id="cid-flow")
    caplog.handler.addFilter(CorrelationFilter())
    with caplog.at_level("INFO", logger="phasegate"):
        app.run_one()
    assert seen == ["cid-flow"]
    assert q(app.test_db_url, "SELECT correlation_id FROM background_function_run") == [
        ("cid-flow",)]
    assert {r.correlation_id for r in caplog.records if r.name == "phasegate.ledger.runner"} == {
        "cid-flow"}


def _spawn(app, worker: str, lease: float, mode: str) -> subprocess.Popen:
    kw = app.redis.connection_pool.connection_kwargs
    redis_url = f"redis://{kw['host']}:{kw['port']}/0"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ledger._worker", app.test_db_url, redis_url,
         worker, str(lease), mode],
        stdout=subprocess.PIPE if mode == "hang" else subprocess.DEVNULL, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))


def test_runner_killed_mid_job_is_rescued_and_the_job_finishes_once(make_app) -> None:
    from tests.integration.ledger._worker import handler

    app = make_app("dual", lease_seconds=1.0, worker_id="rescuer", handlers={"t": handler})
    q(app.test_db_url, EFFECT_TABLE)
    job = app.enqueue_job("t", {"hang": True})
    victim = _spawn(app, "victim", 1.0, "hang")
    try:
        assert victim.stdout.readline().strip() == "effect-done"
        assert q(app.test_db_url, "SELECT status, locked_by FROM background_job") == [
            ("RUNNING", "victim")]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        victim.kill()
        victim.wait(10)
        victim.stdout.close()
    assert app.rescue_expired() == []  # the lease has not expired yet
    time.sleep(1.3)
    assert app.rescue_expired() == [job]
    q(app.test_db_url, "UPDATE background_job SET payload = '{}'")  # the retry must not hang
    assert app.run_one().outcome == "succeeded"
    assert q(app.test_db_url, "SELECT status, attempts FROM background_job") == [("SUCCEEDED", 2)]
    assert q(app.test_db_url, "SELECT worker FROM test_effect") == [("victim",)]  # once
    assert q(app.test_db_url, "SELECT attempt, status, terminal_error LIKE 'lease expired%%' "
             "FROM background_function_run ORDER BY attempt") == [
        (1, "FAILED", True), (2, "SUCCEEDED", None)]


def test_several_runner_processes_share_one_database(make_app) -> None:
    app = make_app("dual")
    q(app.test_db_url, EFFECT_TABLE)
    n = 120
    with __import__("psycopg").connect(to_dsn(app.test_db_url), autocommit=True) as conn:
        conn.execute("INSERT INTO background_job (type, payload) "
                     "SELECT 't', '{}'::jsonb FROM generate_series(1, %s)", (n,))
    from tests.integration.ledger._worker import drain

    kw = app.redis.connection_pool.connection_kwargs
    redis_url = f"redis://{kw['host']}:{kw['port']}/0"
    # fork: three OS processes without three interpreter start-ups; each builds its own app.
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=drain, args=(app.test_db_url, redis_url, f"w{i}", 30.0))
             for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert q(app.test_db_url, "SELECT status, count(*) FROM background_job GROUP BY 1") == [
        ("SUCCEEDED", n)]
    assert q(app.test_db_url, "SELECT count(*), count(DISTINCT job_id) FROM test_effect") == [
        (n, n)]
    assert q(app.test_db_url, "SELECT count(*) FROM background_function_run") == [(n,)]
    workers = q(app.test_db_url, "SELECT count(DISTINCT worker) FROM test_effect")[0][0]
    assert workers >= 2, "expected the jobs to be shared between processes"


@pytest.mark.parametrize("mode", ["redis_only", "dual", "db_only"])
def test_runner_claims_only_job_types_it_has_handlers_for(make_app, mode) -> None:
    app = make_app(mode, policies=FAST)
    app.runner.register("known", lambda ctx: None)
    other = app.enqueue_job("someone-elses")
    app.enqueue_job("known")
    assert app.run_one().outcome == "succeeded"
    assert app.run_one() is None
    assert q(app.test_db_url, "SELECT status FROM background_job WHERE id = %s", (other,)) == [
        ("PENDING",)]


def test_one_correlation_id_from_tick_to_attempts_and_logs(make_app, caplog) -> None:
    from ledger import correlation
    from ledger.logs import CorrelationFilter

    app = make_app("dual", policies=FAST, dispatch_job_type="sweep")
    seen: list[tuple[str, str | None]] = []

    def sweep(ctx: JobContext) -> None:
        seen.append((ctx.correlation_id, ctx.dispatch_key))
        if ctx.attempt == 1:
            raise TimeoutError("first attempt times out")

    app.runner.register("sweep", sweep)
    caplog.handler.addFilter(CorrelationFilter())
    with caplog.at_level("INFO", logger="phasegate"):
        with correlation.use("tick-77"):
            out = app.dispatch("cron.sweep")
        assert out.event_id.startswith("job:")
        app.runner.run_until_empty()
    key = out.registration.dispatch_key
    assert seen == [("tick-77", key), ("tick-77", key)]
    assert q(app.test_db_url, "SELECT correlation_id, dispatch_key FROM background_dispatch_window"
             ) == [("tick-77", key)]
    assert q(app.test_db_url, "SELECT DISTINCT correlation_id, dispatch_key FROM "
             "background_function_run") == [("tick-77", key)]
    ledger_lines = [r for r in caplog.records if r.name.startswith("phasegate.ledger")]
    assert ledger_lines and {r.correlation_id for r in ledger_lines} == {"tick-77"}


def test_a_stalled_worker_that_lost_its_lease_settles_nothing(make_app) -> None:
    import threading

    from tests.integration.ledger._worker import handler as effect_handler

    stalled = make_app("dual", lease_seconds=0.3, heartbeat_seconds=60, worker_id="stalled",
                       policies=FAST)
    rescuer = make_app("dual", db_url=stalled.test_db_url, lease_seconds=0.3,
                       worker_id="rescuer", policies=FAST, handlers={"t": effect_handler})
    q(stalled.test_db_url, EFFECT_TABLE)
    release = threading.Event()

    def slow(ctx: JobContext) -> None:
        effect_handler(ctx)  # the effect happens, then the worker stalls past its lease
        release.wait(10)

    stalled.runner.register("t", slow)
    job = stalled.enqueue_job("t")
    result: list = []
    t = threading.Thread(target=lambda: result.append(stalled.run_one()))
    t.start()
    time.sleep(0.6)
    assert rescuer.rescue_expired() == [job]
    assert rescuer.run_one().outcome == "succeeded"
    release.set()
    t.join(10)
    assert result[0].outcome == "lease_lost"
    assert q(stalled.test_db_url, "SELECT status, attempts, locked_by FROM background_job") == [
        ("SUCCEEDED", 2, None)]
    assert q(stalled.test_db_url, "SELECT count(*) FROM test_effect") == [(1,)]
    assert q(stalled.test_db_url, "SELECT attempt, status FROM background_function_run "
             "ORDER BY attempt") == [(1, "FAILED"), (2, "SUCCEEDED")]
