"""Backfill, liveness, retention and triage checks: pass clean, fail on a seeded violation."""

from __future__ import annotations

import psycopg
import pytest

from checks import Verdict
from tests.conftest import to_dsn
from tests.integration.checks.conftest import Run, Seed, add_runs, add_windows, ago

JOB_SQL = ("INSERT INTO background_job (type, status, attempts) "
           "SELECT 'email', %(status)s::background_job_status, %(attempts)s "
           "FROM generate_series(1, %(n)s)")
# The rollout backfill's run for a finished job: type:job-<id>:<max(attempts,1)>.
BACKFILL_SQL = (
    "INSERT INTO background_function_run (run_key, function_name, run_id, attempt, job_id, status) "
    "SELECT j.type || ':job-' || j.id || ':' || greatest(j.attempts, 1), j.type, 'job-' || j.id, "
    "greatest(j.attempts, 1), j.id, CASE j.status WHEN 'SUCCEEDED' THEN 'SUCCEEDED' ELSE 'FAILED' "
    "END::background_function_run_status FROM background_job j "
    "WHERE j.status IN ('SUCCEEDED', 'FAILED')")


def _jobs(seed: Seed, n: int, status: str = "SUCCEEDED", attempts: int = 1) -> None:
    seed(JOB_SQL, {"status": status, "attempts": attempts, "n": n})


def test_backfill_complete_passes_when_every_finished_job_has_its_run(run_check: Run, seed: Seed) -> None:
    _jobs(seed, 250)
    _jobs(seed, 30, "FAILED", 3)
    _jobs(seed, 20, "PENDING", 0)  # unfinished jobs are not backfilled
    seed(BACKFILL_SQL)
    r = run_check("backfill_complete", backfill_until_id=300, backfill_range_size=100)
    assert r.verdict is Verdict.PASS, r.summary
    assert "280 finished job(s)" in r.summary and "in 3 range(s)" in r.summary


def test_backfill_complete_fails_per_range_with_missing_ids(run_check: Run, seed: Seed) -> None:
    _jobs(seed, 250)
    seed(BACKFILL_SQL)
    seed("DELETE FROM background_function_run WHERE job_id IN (150, 151, 230)")
    r = run_check("backfill_complete", backfill_until_id=250, backfill_range_size=100)
    assert r.verdict is Verdict.FAIL
    assert "3 of 250" in r.summary and "first range 100-199" in r.summary
    ranges = [e["range"] for e in r.evidence if "range" in e]
    assert ranges == ["100-199", "200-299"]
    assert [e["missing_job"]["job_id"] for e in r.evidence if "missing_job" in e] == [150, 151]


def test_backfill_complete_ignores_jobs_beyond_the_bound(run_check: Run, seed: Seed) -> None:
    _jobs(seed, 50)
    seed(BACKFILL_SQL)
    _jobs(seed, 10)  # finished after the backfill started: not its business
    assert run_check("backfill_complete", backfill_until_id=50).verdict is Verdict.PASS
    assert run_check("backfill_complete", backfill_until_id=60).verdict is Verdict.FAIL


def test_backfill_complete_without_a_bound_fails_clearly(run_check: Run) -> None:
    r = run_check("backfill_complete")
    assert r.verdict is Verdict.FAIL
    assert "no backfill_until_id" in r.summary


def test_liveness_leases(run_check: Run, db_url: str, seed: Seed) -> None:
    add_runs(db_url, {"function_name": "f", "run_id": "fresh", "status": "RUNNING", "age": ago(5)},
             {"function_name": "f", "run_id": "old-done", "age": ago(3600)})
    assert run_check("liveness_leases", lease_seconds=60).verdict is Verdict.PASS
    add_runs(db_url, {"function_name": "f", "run_id": "stale", "status": "RUNNING", "age": ago(600)})
    seed("INSERT INTO background_job (type, status, locked_at, locked_by) "
         "VALUES ('email', 'RUNNING', now() - interval '10 minutes', 'worker-1')")
    r = run_check("liveness_leases", lease_seconds=60)
    assert r.verdict is Verdict.FAIL
    assert {(e["kind"], e.get("run_key") or e.get("locked_by")) for e in r.evidence} == {
        ("run", "f:stale:1"), ("job", "worker-1")}


# A dead letter is born OPEN (the trigger of p0014); resolved ones are OPEN ones discarded.
DLQ_SQL = ("INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts, dead_at) "
           "SELECT j.id, 'email', 'TERMINAL', 5, now() - %(age)s FROM background_job j "
           "WHERE j.id > %(after)s ORDER BY j.id LIMIT %(n)s")
DISCARD_SQL = ("UPDATE background_dead_letter SET status = 'DISCARDED', resolved_by = 'test', "
               "resolution_reason = 'seeded' WHERE job_id > %(after)s AND job_id <= %(after)s + %(n)s")


def test_liveness_dead_letters_pass_warn_fail(run_check: Run, seed: Seed) -> None:
    _jobs(seed, 40, "FAILED", 5)
    seed(DLQ_SQL, {"age": ago(5400), "after": 0, "n": 4})  # previous window
    seed(DLQ_SQL, {"age": ago(60), "after": 4, "n": 10})
    seed(DISCARD_SQL, {"after": 4, "n": 10})  # resolved
    r = run_check("liveness_dead_letters", dlq_window_seconds=3600, dlq_max_new=10)
    assert r.verdict is Verdict.PASS, r.summary
    seed(DLQ_SQL, {"age": ago(60), "after": 14, "n": 9})
    r = run_check("liveness_dead_letters", dlq_window_seconds=3600, dlq_max_new=10)
    assert r.verdict is Verdict.WARN and "more than doubled" in r.summary
    seed(DLQ_SQL, {"age": ago(60), "after": 23, "n": 2})
    r = run_check("liveness_dead_letters", dlq_window_seconds=3600, dlq_max_new=10)
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0] == {"job_type": "email", "recent": 11, "previous": 4}


def test_retention_bound(run_check: Run, db_url: str, seed: Seed) -> None:
    day = 86400.0
    add_runs(db_url, {"function_name": "f", "run_id": "young", "age": ago(10 * day)},
             {"function_name": "f", "run_id": "long-running", "status": "RUNNING", "age": ago(40 * day)},
             {"function_name": "f", "run_id": "kept-open-window", "age": ago(40 * day),
              "dispatch_key": "k-open"})
    add_windows(db_url, {"key": "k-open", "status": "ENQUEUED", "end": _in(3600)})
    assert run_check("retention_bound", retention_days=30).verdict is Verdict.PASS
    add_runs(db_url, {"function_name": "f", "run_id": "too-old", "age": ago(35 * day)})
    add_windows(db_url, {"key": "k-old", "status": "ENQUEUED", "end": _in(-35 * day)})
    r = run_check("retention_bound", retention_days=30)
    assert r.verdict is Verdict.FAIL
    assert {(e["kind"], e.get("run_key") or e.get("dispatch_key")) for e in r.evidence} == {
        ("run", "f:too-old:1"), ("window", "k-old")}


def _in(seconds: float):  # noqa: ANN202 - a timestamp relative to now
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_retention_protected_open_dead_letter_lost_history(run_check: Run, seed: Seed) -> None:
    _jobs(seed, 3, "FAILED", 5)
    seed(BACKFILL_SQL)
    seed(DLQ_SQL, {"age": ago(60), "after": 0, "n": 2})
    assert run_check("retention_protected").verdict is Verdict.PASS
    seed("DELETE FROM background_function_run WHERE job_id = 2")
    r = run_check("retention_protected")
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["problem"] == "open dead letter lost its run history"
    assert r.evidence[0]["job_id"] == 2


def test_retention_protected_recent_run_lost_window(run_check: Run, db_url: str, seed: Seed) -> None:
    add_windows(db_url, {"key": "w1", "status": "ENQUEUED", "end": _in(60)})
    add_runs(db_url, {"function_name": "f", "run_id": "a", "dispatch_key": "w1", "age": ago(30)})
    assert run_check("retention_protected").verdict is Verdict.PASS
    seed("DELETE FROM background_dispatch_window WHERE dispatch_key = 'w1'")
    r = run_check("retention_protected")
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["dispatch_key"] == "w1"


def test_retention_protected_pruner_cutoff_inside_bound(run_check: Run) -> None:
    assert run_check("retention_protected", retention_days=30,
                     pruned_before=_in(-31 * 86400).isoformat()).verdict is Verdict.PASS
    r = run_check("retention_protected", retention_days=30, pruned_before=_in(-20 * 86400))
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["problem"] == "pruner cutoff inside the retention bound"


@pytest.fixture
def triage_data(db_url: str, seed: Seed) -> str:
    """20 000 runs and 2 000 dead letters, analysed: big enough that a seq scan is a choice."""
    seed("INSERT INTO background_function_run (run_key, function_name, run_id, attempt, status, "
         "error_class, requested_at, started_at, finished_at) "
         "SELECT 'f' || (g % 7) || ':r' || g || ':1', 'f' || (g % 7), 'r' || g, 1, "
         "(CASE WHEN g % 50 = 0 THEN 'FAILED' WHEN g % 997 = 0 THEN 'RUNNING' ELSE 'SUCCEEDED' END)"
         "::background_function_run_status, CASE WHEN g % 50 = 0 THEN 'TERMINAL'::"
         "background_error_class END, now() - g * interval '10 seconds', "
         "now() - g * interval '10 seconds', now() - g * interval '9 seconds' "
         "FROM generate_series(1, 20000) g")
    _jobs(seed, 2000, "FAILED", 5)
    seed(DLQ_SQL, {"age": ago(60), "after": 0, "n": 2000})
    seed("ANALYZE")
    return db_url


def test_triage_budgets_pass_with_indexes(run_check: Run, triage_data: str) -> None:
    r = run_check("triage_budgets", triage_budget_ms=5000, triage_min_rows=1000)
    assert r.verdict is Verdict.PASS, r.evidence
    assert all(e["expected_index"] in e["indexes_used"] for e in r.evidence)


def test_triage_budgets_fail_without_index(run_check: Run, triage_data: str, seed: Seed) -> None:
    seed("DROP INDEX ix_background_function_run_run_id")
    r = run_check("triage_budgets", triage_budget_ms=5000, triage_min_rows=1000)
    assert r.verdict is Verdict.FAIL
    assert [e["query"] for e in r.evidence] == ["attempts_of_run"]
    assert "does not use ix_background_function_run_run_id" in r.evidence[0]["problem"]


def test_triage_budgets_fail_over_budget(run_check: Run, triage_data: str) -> None:
    r = run_check("triage_budgets", triage_budget_ms=0.000001, triage_min_rows=1000)
    assert r.verdict is Verdict.FAIL
    assert "> 1e-06 ms" in r.summary


def test_checks_are_read_only(run_check: Run, db_url: str) -> None:
    # A check that tried to write would fail; prove the session refuses writes.
    from checks.base import connect
    from rollout.gates import context

    with connect(context(db_url, None)) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with conn.transaction():
            conn.execute("INSERT INTO phasegate_flag (name, value) VALUES ('x', 'y')")
    with psycopg.connect(to_dsn(db_url)) as conn:
        assert conn.execute("SELECT count(*) FROM phasegate_flag").fetchone() == (0,)
