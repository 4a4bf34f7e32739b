"""The rollback of expand drops what ``invoke migrate --to kit`` drops, under the same rule
(rollout/drops.py): once the ledger holds history it needs --yes, the typed-back name in
production and an export of OPEN dead letters; refused, it changes nothing at all. The
automated rollback of a failed expand gate drops empty new tables without asking."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from checks.base import CheckResult, Verdict
from migrations.points import EXPAND, KIT
from rollout.engine import Rollout
from rollout.errors import GateFailed, IrreversibleStep, OpenDeadLetters
from rollout.phases import PHASES
from tests.integration.rollout.harness import apply_through, make_target, phases_of, snapshot

PROJECT = Path(__file__).resolve().parents[3]


def _open_letters(target) -> list[int]:
    with psycopg.connect(target.dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM background_dead_letter WHERE status = 'OPEN' ORDER BY id")]


def test_rollback_of_expand_with_history_needs_every_consent_and_a_refusal_changes_nothing(
        make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=400, production=True)
    apply_through(target, "dual_write", tmp_path)
    before = snapshot(target)
    letters = _open_letters(target)
    assert letters, "the backfill made no OPEN dead letter: the export would prove nothing"
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    out = tmp_path / "open.jsonl"
    try:
        # Judged before the first undo: dual_write, undone first, is still gated after each.
        with pytest.raises(IrreversibleStep, match=r"expand: expand\.migrate\.p0006_expand_dead_letter_audit.*"
                                                   r"\(it drops rows in background_dead_letter.*refusing to run without --yes"):
            ro.rollback("baseline")
        with pytest.raises(IrreversibleStep, match="test is production: type its name back with --confirm test"):
            ro.rollback("baseline", yes=True, confirm_env="prod")
        with pytest.raises(OpenDeadLetters, match=f"drops {len(letters)} OPEN dead letter"):
            ro.rollback("baseline", yes=True, confirm_env="test")
        assert snapshot(target) == before and _open_letters(target) == letters
        reports = ro.rollback("baseline", yes=True, confirm_env="test", export=out)
    finally:
        ro.close()
    assert [r.phase for r in reports] == ["dual_write", "expand"]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == letters
    after = snapshot(target)
    assert after.revision == KIT and "background_dead_letter" not in after.tables
    with psycopg.connect(target.dsn) as conn:
        events = conn.execute("SELECT event, actor, detail FROM phasegate_rollout_event "
                              "WHERE event IN ('rollback_refused', 'dead_letters_exported') ORDER BY id").fetchall()
    assert [(e[0], e[1]) for e in events] == [("rollback_refused", "rm")] * 3 + [("dead_letters_exported", "rm")]
    assert events[-1][2]["file"] == str(out) and events[-1][2]["count"] == len(letters)


def test_the_cli_rollback_refuses_in_one_line(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=300)
    apply_through(target, "dual_write", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        ro.rollback()  # dual_write: a flag, nothing dropped, nothing asked
    finally:
        ro.close()
    before = snapshot(target)
    env = {**os.environ, "PHASEGATE_TEST_DB_URL": target.db_url, "PHASEGATE_TEST_REDIS_URL": redis_url,
           "PHASEGATE_CONFIG": str(tmp_path / "none.toml")}
    cmd = [sys.executable, "-m", "invoke", "-r", str(PROJECT), "rollout", "--env", "test", "--rollback"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and "refusing to run without --yes" in lines[0], lines
    assert snapshot(target) == before
    out = subprocess.run([*cmd, "--yes", "--export", str(tmp_path / "dl.jsonl")], capture_output=True,
                         text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert snapshot(target).revision == KIT and (tmp_path / "dl.jsonl").read_text().count("\n") > 0


def _failing_gate(monkeypatch: pytest.MonkeyPatch, before_verdict=None) -> None:  # type: ignore[no-untyped-def]
    """expand's gate fails (after running ``before_verdict``, which may write rows)."""
    variant = copy.copy(PHASES["expand"])

    def gate(ctx):  # type: ignore[no-untyped-def]
        if before_verdict:
            before_verdict(ctx)
        return [CheckResult("schema_objects", "forced", Verdict.FAIL, "forced failure", (), 0.0, "error")]

    variant.gate = gate
    monkeypatch.setitem(PHASES, "expand", variant)


def test_a_failed_expand_gate_rolls_back_unasked_when_its_tables_are_empty(make_db, redis_url, tmp_path,
                                                                          monkeypatch) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=100, production=True)
    _failing_gate(monkeypatch)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(GateFailed, match="rolled back automatically"):
            ro.apply("expand")
    finally:
        ro.close()
    after = snapshot(target)
    assert after.revision == KIT and phases_of(after)["expand"] == "rolled_back"


def test_an_automated_rollback_never_drops_rows_unasked(make_db, redis_url, tmp_path, monkeypatch) -> None:
    def letter(ctx):  # type: ignore[no-untyped-def]  # an operator's dead letter, between apply and gate
        with psycopg.connect(ctx.target.dsn, autocommit=True) as conn:
            job = conn.execute("SELECT min(id) FROM background_job").fetchone()[0]
            conn.execute("INSERT INTO background_dead_letter (job_id, job_type, error_class, attempts) "
                         "VALUES (%s, 'email.send', 'TERMINAL', 5)", (job,))

    target = make_target(make_db("baseline"), redis_url, jobs=100)
    _failing_gate(monkeypatch, letter)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(GateFailed, match=r"automatic rollback stopped: expand: .*refusing to run without --yes"):
            ro.apply("expand", yes=True)  # --yes for the phase's steps is not --yes for a drop
    finally:
        ro.close()
    after = snapshot(target)
    assert after.revision == EXPAND and phases_of(after)["expand"] == "failed"
    assert len(_open_letters(target)) == 1
