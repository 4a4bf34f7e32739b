"""Dead letters and operator actions: inspect, requeue, discard, audit."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest

from ledger.classify import RetryPolicies, RetryPolicy
from ledger.errors import DeadLetterNotFound, DeadLetterNotOpen, LedgerNotExpanded, ReasonRequired
from tests.conftest import to_dsn
from tests.integration.ledger.conftest import q

ONE_SHOT = RetryPolicies(default=RetryPolicy(max_attempts=1, base_seconds=0))


def _dead(app, job_type: str = "email", error: Exception | None = None, **payload) -> int:
    """Run one job into the dead-letter table; the dead letter's id."""
    def fail(ctx) -> None:
        raise error or ValueError("bad address")

    app.runner.register(job_type, fail)
    job = app.enqueue_job(job_type, payload or {"to": "x"})
    assert app.run_one().outcome == "dead"
    return q(app.test_db_url, "SELECT id FROM background_dead_letter WHERE job_id = %s",
             (job,))[0][0]


def _backdate(db_url: str, dead_letter_id: int) -> None:
    """Make a letter two hours old. dead_at is part of the snapshot the trigger keeps (p0014):
    the test's superuser seeds history with triggers off (replica mode), as a restore would."""
    with psycopg.connect(to_dsn(db_url), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE background_dead_letter SET dead_at = now() - interval '2 hours' "
                     "WHERE id = %s", (dead_letter_id,))


def test_list_filters_by_function_error_class_and_age(make_app) -> None:
    app = make_app("dual", policies=ONE_SHOT)
    a = _dead(app, "email")
    b = _dead(app, "sync", TimeoutError("slow"))
    _backdate(app.test_db_url, a)
    dl = app.dead_letters
    assert {d.id for d in dl.list()} == {a, b}
    assert [d.id for d in dl.list(function="email")] == [a]
    assert [d.id for d in dl.list(error_class="retriable")] == [b]
    assert [d.id for d in dl.list(older_than=timedelta(hours=1))] == [a]
    assert dl.list(status="DISCARDED") == []


def test_requeue_makes_one_fresh_job_and_keeps_history(make_app) -> None:
    app = make_app("dual", policies=ONE_SHOT)
    dl_id = _dead(app, correlation="x")
    old = app.dead_letters.get(dl_id)
    res = app.dead_letters.requeue(dl_id, "alice", "address fixed")
    assert res.correlation_id != old.correlation_id
    assert q(app.test_db_url, "SELECT status, attempts, payload, correlation_id FROM "
             "background_job WHERE id = %s", (res.new_job_id,)) == [
        ("PENDING", 0, {"correlation": "x"}, res.correlation_id)]
    assert q(app.test_db_url, "SELECT status FROM background_job WHERE id = %s",
             (old.job_id,)) == [("FAILED",)]
    after = app.dead_letters.get(dl_id)
    assert (after.status, after.resolved_by, after.requeued_job_id) == (
        "REQUEUED", "alice", res.new_job_id)
    with pytest.raises(DeadLetterNotOpen):
        app.dead_letters.requeue(dl_id, "bob")
    assert q(app.test_db_url, "SELECT operator, action, outcome, reason FROM "
             "background_operator_audit ORDER BY id") == [
        ("alice", "requeue", "ok", "address fixed"), ("bob", "requeue", "refused", None)]


def test_show_has_the_full_attempt_history_across_requeues(make_app) -> None:
    app = make_app("dual", policies=ONE_SHOT)
    first = _dead(app)
    app.dead_letters.requeue(first, "alice")
    assert app.run_one().outcome == "dead"  # the requeued job fails again
    second = app.dead_letters.list()[0].id
    detail = app.dead_letters.show(second)
    assert len(detail.attempts) == 2
    assert all(a.status == "FAILED" and a.error_class == "TERMINAL" for a in detail.attempts)
    assert app.dead_letters.show(first).audit[0].action == "requeue"
    app.dead_letters.show(second, operator="dave")
    assert [(a.operator, a.action) for a in app.dead_letters.show(second).audit] == [
        ("dave", "inspect")]


def test_two_operators_requeueing_at_once_make_one_live_copy(make_app) -> None:
    app = make_app("dual", policies=ONE_SHOT, pool_size=16)
    dl_id = _dead(app)
    barrier = threading.Barrier(8)
    results: list[object] = []

    def go(i: int) -> None:
        barrier.wait()
        try:
            results.append(app.dead_letters.requeue(dl_id, f"op{i}"))
        except DeadLetterNotOpen as exc:
            results.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert q(app.test_db_url, "SELECT count(*) FROM background_job WHERE status IN "
             "('PENDING', 'RUNNING')") == [(1,)]
    assert q(app.test_db_url, "SELECT outcome, count(*) FROM background_operator_audit "
             "GROUP BY 1 ORDER BY 1") == [("ok", 1), ("refused", 7)]


def test_discard_needs_a_reason_and_deletes_nothing(make_app) -> None:
    app = make_app("db_only", policies=ONE_SHOT)
    dl_id = _dead(app)
    with pytest.raises(ReasonRequired):
        app.dead_letters.discard(dl_id, "alice", "  ")
    done = app.dead_letters.discard(dl_id, "alice", "customer deleted")
    assert (done.status, done.resolution_reason) == ("DISCARDED", "customer deleted")
    with pytest.raises(DeadLetterNotOpen):
        app.dead_letters.requeue(dl_id, "bob")
    assert q(app.test_db_url, "SELECT count(*) FROM background_dead_letter") == [(1,)]
    assert q(app.test_db_url, "SELECT count(*) FROM background_function_run") == [(1,)]
    assert q(app.test_db_url, "SELECT action, outcome FROM background_operator_audit "
             "ORDER BY id") == [("discard", "ok"), ("requeue", "refused")]


def test_missing_dead_letter_and_unexpanded_database(make_app) -> None:
    app = make_app("dual")
    with pytest.raises(DeadLetterNotFound):
        app.dead_letters.requeue(999, "alice")
    base = make_app("redis_only", point="baseline")
    with pytest.raises(LedgerNotExpanded):
        base.dead_letters.list()
