"""The contract phase's manual undo, run exactly as its plan prints it, after the legacy keys
really expired: Redis is rebuilt from the run ledger, the schema is back at the expand point,
and the engine accepts the next command (re-applying contract)."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import psycopg
import pytest
import redis as redis_lib

from rollout import plan as plans
from rollout.engine import Rollout
from rollout.errors import IrreversibleStep
from tests.integration.rollout.harness import FAST, apply_through, make_target
from tests.integration.rollout.test_gate_and_plans import _run_manual


@pytest.mark.slow  # every phase forward, the manual steps (three CLI runs), contract again
def test_contract_manual_undo_rebuilds_redis_and_the_engine_goes_on(make_db, redis_url, tmp_path) -> None:
    target = make_target(make_db("baseline"), redis_url, jobs=600,
                         settings=replace(FAST, legacy_key_expire_seconds=1))
    apply_through(target, "contract", tmp_path)
    time.sleep(1.2)  # the legacy keys expire
    r = redis_lib.Redis.from_url(target.redis_url)
    assert not list(r.scan_iter(match="jobstatus:*:*"))
    ro = Rollout(target, "rm", plans_dir=tmp_path / "plans")
    try:
        with pytest.raises(IrreversibleStep, match="rollback stops here"):
            ro.rollback()
        p = plans.build(target, "contract", plans.table_sizes(None))
        env = dict(os.environ, PHASEGATE_TEST_DB_URL=target.db_url,
                   PHASEGATE_TEST_REDIS_URL=target.redis_url, PHASEGATE_CONFIG=str(tmp_path / "none.toml"))
        for step in p["manual_rollback"]:
            for cmd in step["commands"]:
                _run_manual(cmd, target, env)
            with psycopg.connect(target.dsn) as conn:
                for query in step["verify"]:
                    sql, _, expect = query.partition("-- expect ")
                    assert conn.execute(sql).fetchone()[0] == expect.strip(), query
        with psycopg.connect(target.dsn) as conn:
            recent = conn.execute(
                "SELECT count(DISTINCT (function_name, run_id)) FROM background_function_run "
                "WHERE requested_at > now() - interval '7 days'").fetchone()[0]
        rebuilt = len(list(r.scan_iter(match="jobstatus:*:*", count=1000)))
        assert recent > 0 and rebuilt == recent
        assert ro.apply("contract", yes=True).outcome == "gated"
    finally:
        ro.close()
        r.close()
