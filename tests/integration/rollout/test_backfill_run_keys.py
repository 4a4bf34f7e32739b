"""Issue 13 through the rollout: the backfill escapes run keys in SQL exactly as the ledger
does in Python, keeps an attempt already recorded under its pre-encoding key, and a
dual_write gate with names holding ':' and '%' passes, parity counting every run apart."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import redis as redis_lib
from sqlalchemy import create_engine, pool

from checks import Verdict, run_checks
from checks.sqlfile import query
from demo.seed import write_legacy_status
from ledger import sqlfiles
from ledger.app import LedgerApp
from ledger.redis_layout import (
    SQL_ESCAPE_PARAMS,
    legacy_run_key,
    legacy_status_key,
    run_key,
    status_key,
)
from rollout import backfill
from rollout.engine import Rollout
from rollout.gates import context
from rollout.phases import PHASES
from tests.conftest import to_dsn
from tests.integration.rollout.harness import FAST, apply_through, make_target, phases_of, snapshot

AWKWARD_TYPES = ("email:send", "email", "a%3Ab", "100%", "%25", "::", "", "ünï:cødé",
                 "ж%ж", "a%b:c%3A")


def _jobs(dsn: str, types: tuple[str, ...], attempts: int = 2) -> list[tuple[int, str, str]]:
    """One finished job per type (SUCCEEDED, FAILED alternately): (id, type, status)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [tuple(conn.execute(
            "INSERT INTO background_job (type, status, attempts, last_error) VALUES "
            "(%s, %s::background_job_status, %s, 'boom') RETURNING id, type, status::text",
            (t, "SUCCEEDED" if i % 2 == 0 else "FAILED", attempts)).fetchone())
            for i, t in enumerate(types)]


def _backfill_all(db_url: str) -> None:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        sqlfiles.execute(conn, backfill.BATCH_SQL, {
            "after_id": 0, "until_id": 10**9, "batch_size": 10_000, **SQL_ESCAPE_PARAMS})
    engine.dispose()


def _runs(dsn: str) -> dict[tuple[str, str], list[str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT function_name, run_id, run_key FROM background_function_run "
                            "ORDER BY id").fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    for fn, run_id, key in rows:
        out.setdefault((fn, run_id), []).append(key)
    return out


def test_the_backfill_escapes_run_keys_as_the_ledger_does(make_db) -> None:
    url = make_db("head")
    jobs = _jobs(to_dsn(url), AWKWARD_TYPES)
    _backfill_all(url)
    runs = _runs(to_dsn(url))
    assert runs == {(t, f"job-{i}"): [run_key(t, f"job-{i}", 2)] for i, t, _ in jobs}


def test_the_backfill_keeps_an_attempt_recorded_under_its_legacy_key(make_db) -> None:
    url = make_db("head")
    dsn = to_dsn(url)
    [(job_id, fn, _), (plain_id, plain, _)] = _jobs(dsn, ("email:send", "email"))
    run_id = f"job-{job_id}"
    with psycopg.connect(dsn, autocommit=True) as conn:  # an earlier release's live dual write
        conn.execute("INSERT INTO background_function_run (run_key, function_name, run_id, "
                     "attempt, job_id, status) VALUES (%s, %s, %s, 2, %s, 'SUCCEEDED')",
                     (legacy_run_key(fn, run_id, 2), fn, run_id, job_id))
    _backfill_all(url)
    assert _runs(dsn) == {(fn, run_id): [legacy_run_key(fn, run_id, 2)],
                          (plain, f"job-{plain_id}"): [run_key(plain, f"job-{plain_id}", 2)]}
    [r] = run_checks(["backfill_complete"], context(url, None, backfill_until_id=plain_id))
    assert r.verdict is Verdict.PASS, r.summary


def test_backfill_complete_probes_the_unique_run_key_index_whatever_the_statistics(make_db) -> None:
    """One probe of the unique run_key index per job (both key forms, the columns matched),
    also when the run ledger was last analyzed empty, as it is right after a backfill: a
    run_id-index probe was then planned as a sequential scan per job and timed out the
    100k-job demo."""
    url = make_db("head")
    dsn = to_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO background_job (type, status, attempts) SELECT 'f', "
                     "'SUCCEEDED', 1 FROM generate_series(1, 20000)")
        conn.execute("ANALYZE background_job")
        conn.execute("ANALYZE background_function_run")  # statistics of an empty ledger
    _backfill_all(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + sqlfiles.render(query("backfill", "backfill_ranges"),
                                         {"size": 1000, "until_id": 20000, **SQL_ESCAPE_PARAMS})))
    assert "run_key" in plan and "Index" in plan, plan
    assert "Seq Scan on background_function_run" not in plan, plan


# A short grace: the gate runs a moment after the writes it compares.
QUICK = replace(FAST, parity_grace_seconds=0.2)
SEND, SEND_ALIAS = ("email:send", "user42"), ("email", "send:user42")


def _gate(target, **params) -> dict[str, object]:
    ctx = context(target.db_url, target.redis_url, QUICK, **params)
    return {r.check_id: r for r in run_checks(list(PHASES["dual_write"].gate_checks), ctx)}


def test_a_dual_write_gate_with_colons_and_percents_passes(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=300, settings=QUICK)
    before = datetime.now(UTC) - timedelta(seconds=5)
    # The pre-rollout application ran jobs of awkward types and wrote their legacy statuses.
    jobs = _jobs(target.dsn, AWKWARD_TYPES)
    r = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    pipe = r.pipeline()
    for job_id, fn, status in jobs:
        write_legacy_status(pipe, fn, f"job-{job_id}", 2, status)
    pipe.execute()
    apply_through(target, "expand", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        assert ro.apply("dual_write").outcome == "gated"
        checkpoint = ro.store.get("dual_write").checkpoint
    finally:
        ro.close()
    assert phases_of(snapshot(target))["dual_write"] == "gated"
    runs = _runs(target.dsn)
    for job_id, fn, _ in jobs:  # backfilled under the escaped key
        assert runs[(fn, f"job-{job_id}")] == [run_key(fn, f"job-{job_id}", 2)]

    # The finding, live in dual write: two runs, two rows, two hashes.
    app = LedgerApp(target.db_url, redis_url, flag_ttl=0)
    try:
        app.record_run(*SEND, outcome="succeeded")
        app.record_run(*SEND_ALIAS, outcome="failed", error=ValueError("bounced"))
        time.sleep(0.5)  # past the grace
        gate = _gate(target, parity_since=checkpoint["dual_since"],
                     backfill_until_id=checkpoint["backfill_until_id"])
        assert not [g for g in gate.values() if g.verdict is Verdict.FAIL], {
            k: g.summary for k, g in gate.items() if g.verdict is not Verdict.PASS}
        assert gate["parity"].verdict is Verdict.PASS and gate["backfill_complete"].verdict is Verdict.PASS
        assert "2 Redis status(es) and 2 DB run(s)" in gate["parity"].summary

        # Since before the awkward jobs: their statuses are under legacy keys, each counted
        # (a WARN: not blocking, not a mismatch) until reconcile moves them.
        escaped = {legacy_status_key(fn, f"job-{i}") for i, fn, _ in jobs
                   if legacy_status_key(fn, f"job-{i}") != status_key(fn, f"job-{i}")}
        wide = _gate(target, parity_since=before.isoformat(),
                     backfill_until_id=checkpoint["backfill_until_id"])["parity"]
        assert wide.verdict is Verdict.WARN, (wide.summary, wide.evidence)
        assert f"{len(escaped)} legacy ambiguous key(s)" in wide.summary
        assert {e["key"] for e in wide.evidence} == escaped
        report = app.reconcile(before)
        assert report.legacy_moved == len(escaped)
        time.sleep(0.5)
        after = _gate(target, parity_since=before.isoformat(),
                      backfill_until_id=checkpoint["backfill_until_id"])["parity"]
        assert after.verdict is Verdict.PASS, (after.summary, after.evidence)
        for job_id, fn, status in jobs:
            assert app.read_status(fn, f"job-{job_id}").status == status
        assert app.read_status(*SEND).status == "SUCCEEDED"
        assert app.read_status(*SEND_ALIAS).status == "FAILED"
    finally:
        app.close()
        r.close()
