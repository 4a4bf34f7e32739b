"""A failed gate rolls back automatically; plans name real commands that work by hand."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib

from demo.seed import write_legacy_status
from rollout import plan as plans
from rollout.engine import Rollout
from rollout.errors import GateFailed, IrreversibleStep
from rollout.phase import PHASE_ORDER
from rollout.phases import PHASES
from tests.integration.rollout.harness import (
    FAST,
    apply_through,
    flags_of,
    make_target,
    phases_of,
    snapshot,
)

ROOT = Path(__file__).resolve().parents[3]


class StaleInstance(threading.Thread):
    """An application instance that never picked up the flag: it keeps writing Redis only."""

    def __init__(self, redis_url: str) -> None:
        super().__init__(daemon=True)
        self.redis_url, self.stop = redis_url, threading.Event()

    def run(self) -> None:
        r = redis_lib.Redis.from_url(self.redis_url)
        n = 0
        while not self.stop.is_set():
            pipe = r.pipeline()
            write_legacy_status(pipe, "email.send", f"stale-{n}", 1, "SUCCEEDED", datetime.now(UTC))
            pipe.execute()
            n += 1
            time.sleep(0.02)
        r.close()


# A short grace, and a backfill slow enough that the stale writes age past it before the gate.
STRICT = replace(FAST, parity_grace_seconds=0.1, backfill_rows_per_second=10_000)


def test_parity_break_fails_the_gate_and_rolls_back(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, settings=STRICT)
    apply_through(target, "expand", tmp_path)
    stale = StaleInstance(redis_url)
    stale.start()
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        # The line says why: the check, its summary and the threshold it compared.
        with pytest.raises(GateFailed, match=r"dual_write: gate failed: parity \(fail\): .+"
                                             r"\[.*parity_grace_seconds=0\.1.*\].*; rolled back automatically"):
            ro.apply("dual_write")
    finally:
        stale.stop.set()
        stale.join(5)
        ro.close()
    after = snapshot(target)
    # The previous phase's consistent state: expand gated, dual write off.
    assert phases_of(after) == {"expand": "gated", "dual_write": "rolled_back"}
    assert flags_of(after)["write_mode"] == "redis_only"
    with psycopg.connect(target.dsn) as conn:
        events = [r[0] for r in conn.execute(
            "SELECT event FROM phasegate_rollout_event WHERE phase = 'dual_write' ORDER BY id")]
        detail = conn.execute(
            "SELECT detail FROM phasegate_rollout_event WHERE event = 'gate' AND phase = 'dual_write'").fetchone()[0]
    assert events[-3:] == ["gate", "auto_rollback", "rolled_back"] or "auto_rollback" in events
    parity = next(r for r in detail["results"] if r["check"] == "parity")
    assert parity["verdict"] == "fail"


def test_no_auto_rollback_leaves_the_phase_applied(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, settings=STRICT)
    apply_through(target, "expand", tmp_path)
    stale = StaleInstance(redis_url)
    stale.start()
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(GateFailed, match="left applied"):
            ro.apply("dual_write", auto_rollback=False)
    finally:
        stale.stop.set()
        stale.join(5)
    assert phases_of(snapshot(target))["dual_write"] == "failed"
    # --status says why too: in JSON the failed check carries its summary ...
    gate = next(p for p in ro.status()["phases"] if p["phase"] == "dual_write")["gate"]
    parity = next(g for g in gate if g["check"] == "parity")
    assert parity["verdict"] == "fail" and parity["summary"]
    # ... and the table (at 80 columns) names it under a compact gate cell.
    env = {**os.environ, "COLUMNS": "80", "PHASEGATE_GW_DB_URL": target.db_url,
           "PHASEGATE_GW_REDIS_URL": target.redis_url, "PHASEGATE_CONFIG": str(tmp_path / "none.toml")}
    shown = subprocess.run([sys.executable, "-m", "invoke", "rollout", "--status", "--env", "gw"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "FAIL " in shown.stdout and "why dual_write: parity (fail): " in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    assert flags_of(snapshot(target))["write_mode"] == "dual"
    ro.rollback()
    ro.close()
    assert flags_of(snapshot(target))["write_mode"] == "redis_only"


def test_irreversible_phase_needs_yes_and_production_needs_the_name(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, production=True)
    apply_through(target, "cutover", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(IrreversibleStep, match="refusing to run without --yes"):
            ro.apply("retention")
        with pytest.raises(IrreversibleStep, match="type its name back with --confirm test"):
            ro.apply("retention", yes=True, confirm_env="prod")
        assert phases_of(snapshot(target)).get("retention", "pending") == "pending"
        assert ro.apply("retention", yes=True, confirm_env="test").outcome == "gated"
    finally:
        ro.close()


@pytest.mark.parametrize("phase", PHASE_ORDER)
def test_plans_name_real_commands_and_no_secret(phase, make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=200)
    p = plans.build(target, phase, plans.table_sizes(None))
    md = plans.render_markdown(p)
    assert p["rollback_command"].startswith("invoke rollout --env test --rollback --to ")
    assert p["steps"] and all(s["id"].startswith(phase) for s in p["steps"])
    assert "Manual rollback" in md and "Go / no-go" in md
    assert target.db_url.split("@")[0] not in json.dumps(p)
    assert ":" + str(target.db_url.split(":")[-1].split("/")[0]) not in md  # no port/URL
    if phase in ("retention", "contract"):
        assert p["irreversible_points"]


def test_status_and_dry_run_gate_follow_the_phase_tuple(make_db, redis_url, tmp_path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from checks.base import REGISTRY

    target = make_target(make_db("baseline"), redis_url, jobs=50)
    apply_through(target, "expand", tmp_path)
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        shown = {p["phase"]: p["gate"] for p in ro.status()["phases"]}
        assert shown["expand"] == [{"check": c, "verdict": "pass"} for c in PHASES["expand"].gate_checks]
        assert {g["verdict"] for g in shown["dual_write"]} == {"pending"}
        # Only the tuple changes (as an edit of rollout/phases/expand.py would): status follows.
        variant = copy.copy(PHASES["expand"])
        variant.gate_checks = ("schema_valid", "parity")
        monkeypatch.setitem(PHASES, "expand", variant)
        assert {p["phase"]: p["gate"] for p in ro.status()["phases"]}["expand"] == [
            {"check": "schema_valid", "verdict": "pass"}, {"check": "parity", "verdict": "pending"}]
        assert ro.dry_run("expand")["gate"].startswith(REGISTRY["schema_valid"].title + "; ")
    finally:
        ro.close()


def _run_manual(cmd: str, target, env: dict) -> None:
    if cmd.startswith(("invoke ", "sleep ")):
        subprocess.run(shlex.split(cmd), cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    elif cmd.strip().startswith("--"):
        return
    else:
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            conn.execute(cmd)


@pytest.mark.parametrize("phase", ["expand", "cutover"])
def test_manual_rollback_steps_of_a_plan_work(phase, make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=300)
    apply_through(target, phase, tmp_path)
    p = plans.build(target, phase, plans.table_sizes(None))
    env = dict(os.environ, PHASEGATE_TEST_DB_URL=target.db_url, PHASEGATE_TEST_REDIS_URL=target.redis_url)
    # Each step in the plan's order, then its proof query, exactly as a person would.
    for step in p["manual_rollback"]:
        for cmd in step["commands"]:
            _run_manual(cmd, target, env)
        with psycopg.connect(target.dsn) as conn:
            for query in step["verify"]:
                sql, _, expect = query.partition("-- expect ")
                got = conn.execute(sql).fetchone()[0]
                assert got == expect.strip(), (query, got)
    with psycopg.connect(target.dsn) as conn:
        if phase == "expand":
            assert conn.execute("SELECT to_regclass('background_function_run')").fetchone()[0] is None
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "p0002_kit"
        else:
            assert conn.execute("SELECT value FROM phasegate_flag WHERE name = 'read_source'").fetchone()[0] == "redis"
