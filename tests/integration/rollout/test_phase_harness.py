"""Every phase through apply -> gate -> rollback -> re-apply -> gate, asserting schema,
flags and data after each step, against real Postgres and Redis."""

from __future__ import annotations

import json

import psycopg
import pytest

from ledger.models import EXPAND_TABLES
from migrations.points import CONTRACT, EXPAND, KIT
from rollout.engine import Rollout
from rollout.errors import IrreversibleStep
from rollout.phase import PHASE_ORDER
from tests.integration.rollout.harness import (
    Snapshot,
    apply_through,
    flags_of,
    make_target,
    phases_of,
    snapshot,
)

# Who acted on the append-only logs: p0014's downgrade keeps it, on purpose (an automated
# rollback must not lose audit history), so it is not part of "the schema back as it was".
KEPT_ON_ROLLBACK = {"phasegate_rollout_event.db_role", "background_operator_audit.db_role"}


def _schema(s: Snapshot) -> tuple:
    columns = tuple(c for c in s.columns if c not in KEPT_ON_ROLLBACK)
    return (s.revision, s.tables, s.indexes, columns, s.enums)


def _count(s: Snapshot, table: str) -> int:
    return dict(s.counts).get(table, -1)


def _finished_jobs(target) -> tuple[int, int]:
    with psycopg.connect(target.dsn) as conn:
        return conn.execute(
            "SELECT count(*) FILTER (WHERE status IN ('SUCCEEDED','FAILED')), "
            "count(*) FILTER (WHERE status = 'FAILED') FROM background_job").fetchone()


def check_applied(phase: str, target, before: Snapshot, after: Snapshot) -> None:
    assert phases_of(after)[phase] == "gated"
    assert all(valid for _, valid in after.indexes), "no invalid index"
    if phase == "expand":
        assert after.revision == EXPAND
        assert set(EXPAND_TABLES) <= set(after.tables)
        assert "background_job.correlation_id" in after.columns
        assert flags_of(after).get("write_mode", "redis_only") == "redis_only"
    elif phase == "dual_write":
        assert flags_of(after)["write_mode"] == "dual"
        finished, failed = _finished_jobs(target)
        assert _count(after, "background_function_run") == finished
        assert _count(after, "background_dead_letter") == failed
        assert _schema(after) == _schema(before)
    elif phase == "cutover":
        assert flags_of(after)["read_source"] == "db"
        assert flags_of(after)["write_mode"] == "dual"
    elif phase == "retention":
        assert flags_of(after)["retention"] == "on"
        assert 0 < _count(after, "background_function_run") < _count(before, "background_function_run")
        with psycopg.connect(target.dsn) as conn:
            # Runs of jobs with an OPEN dead letter survive, whatever their age.
            orphaned = conn.execute(
                "SELECT count(*) FROM background_dead_letter d WHERE d.status = 'OPEN' AND NOT EXISTS "
                "(SELECT 1 FROM background_function_run r WHERE r.job_id = d.job_id)").fetchone()[0]
            oldest = conn.execute(
                "SELECT min(requested_at) > now() - interval '30 days 1 hour' FROM background_function_run r "
                "WHERE NOT EXISTS (SELECT 1 FROM background_dead_letter d WHERE d.job_id = r.job_id "
                "AND d.status = 'OPEN')").fetchone()[0]
        assert orphaned == 0
        assert oldest is True
    elif phase == "contract":
        assert flags_of(after)["write_mode"] == "db_only"
        assert after.revision == CONTRACT
        assert "ix_background_job_status_run_at" not in dict(after.indexes)
        assert after.redis_keys > 0 and after.redis_persistent_keys == 0


def check_rolled_back(phase: str, before: Snapshot, applied: Snapshot, back: Snapshot) -> None:
    assert phases_of(back)[phase] == "rolled_back"
    assert _schema(back) == _schema(before), "schema back to the previous phase's"
    assert {k: v for k, v in flags_of(back).items()} == {
        **flags_of(before), **{k: v for k, v in flags_of(back).items() if k not in flags_of(before)}}
    if phase == "expand":
        assert back.revision == KIT
        assert not set(EXPAND_TABLES) & set(back.tables)
    elif phase == "dual_write":
        assert flags_of(back)["write_mode"] == "redis_only"
        # Backfilled history stays: it is correct, and re-apply skips it.
        assert _count(back, "background_function_run") == _count(applied, "background_function_run")
    elif phase == "cutover":
        assert flags_of(back)["read_source"] == "redis"
        assert flags_of(back)["write_mode"] == "dual"
    elif phase == "retention":
        assert flags_of(back)["retention"] == "off"
        # Pruned rows are not restored (irreversible), and nothing else changed.
        assert back.counts == applied.counts


@pytest.mark.parametrize("phase", PHASE_ORDER)
def test_apply_gate_rollback_reapply(phase, make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url)
    idx = PHASE_ORDER.index(phase)
    if idx:
        apply_through(target, PHASE_ORDER[idx - 1], tmp_path)
    ro = Rollout(target, "harness", plans_dir=tmp_path / "plans")
    ro.ensure_kit()  # the kit's own tables stay through every rollback: compare from here
    before = snapshot(target)
    try:
        report = ro.apply(phase, yes=True)
        assert report.outcome == "gated", report
        assert report.gate and all(g["verdict"] != "fail" for g in report.gate)
        plan = json.loads((tmp_path / "plans" / f"{phase}.json").read_text())
        assert plan["phase"] == phase and plan["steps"]
        applied = snapshot(target)
        check_applied(phase, target, before, applied)

        if phase == "contract":
            # The legacy keys have expired: rollback refuses and points to the manual path.
            with pytest.raises(IrreversibleStep, match="manual path"):
                ro.rollback()
            assert snapshot(target) == applied
            return

        # No consent given: expand's undo drops only tables nothing has written to yet, which
        # asks nothing (rollout/drops.py); with history in them it is refused
        # (test_rollback_drops.py), so this also proves the rule lets an empty drop through.
        ro.rollback()
        back = snapshot(target)
        check_rolled_back(phase, before, applied, back)

        report = ro.apply(phase, yes=True)
        assert report.outcome == "gated"
        again = snapshot(target)
        assert _schema(again) == _schema(applied)
        assert again.flags == applied.flags
        if phase != "retention":
            assert again.counts == applied.counts
    finally:
        ro.close()
