"""Schema and dedupe checks: pass on a clean head database, fail on a seeded violation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks import Verdict
from checks.base import MAX_EVIDENCE
from tests.integration.checks.conftest import Run, Seed, add_runs, add_windows, ago

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_schema_objects_pass_on_head(run_check: Run) -> None:
    r = run_check("schema_objects")
    assert r.verdict is Verdict.PASS, r.summary
    assert "expected objects present" in r.summary


def test_migrations_lint_gate(run_check: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_check("migrations_lint").verdict is Verdict.PASS
    bad = tmp_path / "p9999_bad.py"
    bad.write_text('from alembic import op\nphase = "expand"\n\ndef upgrade():\n'
                   '    op.execute("ALTER TABLE background_job RENAME COLUMN type TO kind")\n')
    monkeypatch.setattr("checks.lint.default_paths", lambda: [bad])
    r = run_check("migrations_lint")
    assert r.verdict is Verdict.FAIL
    assert {e["rule"] for e in r.evidence} == {"PG009", "PG011"}


def test_schema_objects_fail_on_missing_index_and_table(run_check: Run, seed: Seed) -> None:
    seed("DROP INDEX ix_background_function_run_run_id")
    seed("DROP TABLE background_job_effect")
    r = run_check("schema_objects")
    assert r.verdict is Verdict.FAIL
    names = {(e["kind"], e["name"]) for e in r.evidence}
    assert ("index", "background_function_run.ix_background_function_run_run_id") in names
    assert ("table", "background_job_effect") in names


def test_schema_objects_fail_on_missing_enum_value(run_check: Run, seed: Seed,
                                                   make_db: Callable[[str], str]) -> None:
    url = make_db("kit")
    seed("CREATE TYPE background_error_class AS ENUM ('RETRIABLE')", url=url)
    r = run_check("schema_objects", url=url)
    assert r.verdict is Verdict.FAIL
    names = {(e["kind"], e["name"]) for e in r.evidence}
    assert ("enum value", "background_error_class.TERMINAL") in names
    assert ("enum", "background_dispatch_status") in names


def test_schema_objects_fail_on_baseline(run_check: Run, make_db: Callable[[str], str]) -> None:
    r = run_check("schema_objects", url=make_db("baseline"))
    assert r.verdict is Verdict.FAIL
    names = {(e["kind"], e["name"]) for e in r.evidence}
    assert ("column", "background_job.dispatch_key") in names
    assert ("table", "phasegate_flag") in names
    # 16 as before, and the 7 functions; the evidence is a bounded sample of them.
    assert int(r.summary.split()[0]) == 16 + 7 and len(r.evidence) == MAX_EVIDENCE


def test_schema_objects_fail_on_a_dropped_guard_trigger_and_function(run_check: Run, seed: Seed) -> None:
    seed("DROP TRIGGER background_dead_letter_guard ON background_dead_letter")
    seed("DROP FUNCTION phasegate_dlq_inspect(bigint, text)")
    r = run_check("schema_objects")
    assert r.verdict is Verdict.FAIL
    assert {(e["kind"], e["name"]) for e in r.evidence} == {
        ("trigger", "background_dead_letter.background_dead_letter_guard"),
        ("function", "phasegate_dlq_inspect")}


def test_schema_valid_fails_on_a_disabled_guard_trigger(run_check: Run, seed: Seed) -> None:
    """An owner's way around the append-only logs: disable the trigger, then rewrite."""
    seed("ALTER TABLE background_operator_audit DISABLE TRIGGER background_operator_audit_no_truncate")
    seed("ALTER TABLE background_dead_letter DISABLE TRIGGER background_dead_letter_guard")
    r = run_check("schema_valid")
    assert r.verdict is Verdict.FAIL
    assert {e["name"] for e in r.evidence} == {
        "background_operator_audit.background_operator_audit_no_truncate",
        "background_dead_letter.background_dead_letter_guard"}


def test_schema_valid_fails_on_not_valid_constraint_and_invalid_index(run_check: Run,
                                                                      seed: Seed) -> None:
    assert run_check("schema_valid").verdict is Verdict.PASS
    seed("ALTER TABLE background_function_run ADD CONSTRAINT ck_extra "
         "CHECK (attempt < 1000) NOT VALID")
    seed("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
         "'ix_background_function_run_run_id'::regclass")
    r = run_check("schema_valid")
    assert r.verdict is Verdict.FAIL
    assert {e["name"] for e in r.evidence} == {
        "background_function_run.ck_extra",
        "background_function_run.ix_background_function_run_run_id"}


def test_schema_valid_fails_on_index_not_ready(run_check: Run, seed: Seed) -> None:
    seed("UPDATE pg_index SET indisready = false WHERE indexrelid = "
         "'ix_background_job_claimable'::regclass")
    r = run_check("schema_valid")
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["ready"] is False


def test_dedupe_dispatch_unique_fails_on_two_runs_for_one_key(run_check: Run, db_url: str) -> None:
    add_windows(db_url, {"key": "cron:1", "status": "ENQUEUED", "start": T0, "end": T0 + MIN})
    add_runs(db_url, {"function_name": "process", "run_id": "r1", "dispatch_key": "cron:1"},
             {"function_name": "process", "run_id": "r1", "attempt": 2, "dispatch_key": "cron:1"})
    assert run_check("dedupe_dispatch_unique").verdict is Verdict.PASS  # two attempts, one run
    add_runs(db_url, {"function_name": "process", "run_id": "r2", "dispatch_key": "cron:1"})
    r = run_check("dedupe_dispatch_unique")
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["dispatch_key"] == "cron:1"
    assert {r.evidence[0]["first_run_id"], r.evidence[0]["other_run_id"]} == {"r1", "r2"}


def test_dedupe_dispatch_unique_fails_on_key_registered_twice(run_check: Run, seed: Seed,
                                                              db_url: str) -> None:
    seed("ALTER TABLE background_dispatch_window "
         "DROP CONSTRAINT uq_background_dispatch_window_dispatch_key")
    add_windows(db_url, *[{"key": "cron:9", "status": "ENQUEUED"}] * 2)
    r = run_check("dedupe_dispatch_unique")
    assert r.verdict is Verdict.FAIL
    assert r.evidence[0]["problem"] == "key registered twice"


def test_dedupe_dispatch_unique_scans_when_the_unique_index_is_invalid(run_check: Run, seed: Seed,
                                                                      db_url: str) -> None:
    assert "unique index enforces" in run_check("dedupe_dispatch_unique").summary
    seed("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
         "'uq_background_dispatch_window_dispatch_key'::regclass")
    r = run_check("dedupe_dispatch_unique")
    assert r.verdict is Verdict.PASS and "no key registered twice" in r.summary


def test_dedupe_enqueued_and_inline(run_check: Run, db_url: str) -> None:
    add_windows(db_url,
                {"key": "a:1", "status": "ENQUEUED", "start": T0, "end": T0 + MIN},
                {"key": "a:2", "status": "INLINE_EMERGENCY", "start": T0 + MIN, "end": T0 + 2 * MIN},
                {"key": "b:1", "status": "INLINE_EMERGENCY", "start": T0, "end": T0 + MIN,
                 "source": "other"})
    assert run_check("dedupe_enqueued_and_inline").verdict is Verdict.PASS  # adjacent / other source
    add_windows(db_url, {"key": "a:3", "status": "INLINE_EMERGENCY", "start": T0 + MIN / 2,
                         "end": T0 + MIN * 0.75})
    r = run_check("dedupe_enqueued_and_inline")
    assert r.verdict is Verdict.FAIL
    assert [(e["enqueued_key"], e["inline_key"]) for e in r.evidence] == [("a:1", "a:3")]


def test_dedupe_stuck_dispatching(run_check: Run, db_url: str) -> None:
    add_windows(db_url, {"key": "s:1", "status": "DISPATCHING", "created_age": ago(10)})
    assert run_check("dedupe_stuck_dispatching", stuck_dispatch_seconds=300).verdict is Verdict.PASS
    add_windows(db_url, {"key": "s:2", "status": "DISPATCHING", "created_age": ago(600)})
    r = run_check("dedupe_stuck_dispatching", stuck_dispatch_seconds=300)
    assert r.verdict is Verdict.FAIL
    assert [e["dispatch_key"] for e in r.evidence] == ["s:2"]
    assert r.summary.startswith("1 window(s)")
