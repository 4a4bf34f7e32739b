"""Bugs the zero-downtime run found in code this area does not own, each reproduced in
isolation (see bench/README.md, "Findings"). They were pinned as strict xfails until the
owning code was fixed; all are fixed now and these are their regression guards."""

from __future__ import annotations

import psycopg
from sqlalchemy import create_engine, pool

from ledger.app import LedgerApp
from ledger.flags import WRITE_MODE, set_flag
from migrations import api as migrations_api
from rollout.engine import Rollout
from rollout.environments import Target
from rollout.settings import Settings
from tests.conftest import to_dsn


def _write_mode(db_url: str, mode: str) -> None:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        set_flag(conn, WRITE_MODE, mode, "test")
    engine.dispose()


# Finding 1 (fixed in ledger/db.py, ed92891): prepared statements staled by the expand
# rollback + re-apply reset the pool and are retried once. Now a regression guard.
def test_app_survives_expand_rollback_and_reapply(make_db, redis_url) -> None:
    url = make_db("expand")
    _write_mode(url, "dual")
    app = LedgerApp(url, redis_url, flag_ttl=0, pool_size=1)
    try:
        for i in range(8):  # past psycopg's prepare threshold (5)
            app.record_run("f", f"r{i}", outcome="succeeded")
        _write_mode(url, "redis_only")
        app.record_run("f", "legacy", outcome="succeeded")
        migrations_api.downgrade(url, "kit")  # the expand rollback
        migrations_api.upgrade(url, "expand")  # expand applied again
        _write_mode(url, "dual")
        st = app.record_run("f", "after", outcome="succeeded")
        assert st.status == "SUCCEEDED"
    finally:
        app.close()


# Regression guard (found by the zero-downtime run): duration_ms used to overflow.
def test_backfill_of_a_job_that_waited_a_month(make_db, redis_url, tmp_path) -> None:
    url = make_db("baseline")
    with psycopg.connect(to_dsn(url)) as conn:
        # A job created 40 days ago that ran (and finished) just now: a long backlog or a
        # delayed job. The ledger's runner leaves exactly this row behind.
        conn.execute("INSERT INTO background_job (type, payload, status, attempts, run_at, "
                     "created_at, updated_at) VALUES ('t', '{}', 'SUCCEEDED', 1, "
                     "now() - interval '40 days', now() - interval '40 days', now())")
    target = Target("test", url, redis_url, False,
                    Settings(flag_ttl_seconds=0.05, soak_seconds=0, lease_seconds=3600))
    ro = Rollout(target, "test", plans_dir=tmp_path)
    try:
        ro.apply("expand", yes=True)
        assert ro.apply("dual_write", yes=True).outcome == "gated"
    finally:
        ro.close()


# Finding 3 (fixed in rollout, 1e76f55): undoing a flag waits out the flag cache after the
# flip. Now a regression guard.
def test_rollback_waits_out_the_flag_cache_after_flipping(make_db, redis_url, tmp_path) -> None:
    from demo.seed import seed_baseline

    url = make_db("baseline")
    seed_baseline(url, redis_url, jobs=200, redis_statuses=20, duplicate_ticks=2)
    ttl = 1.0
    target = Target("test", url, redis_url, False,
                    Settings(flag_ttl_seconds=ttl, soak_seconds=0, lease_seconds=3600))
    ro = Rollout(target, "test", plans_dir=tmp_path)
    try:
        ro.apply("expand", yes=True)
        ro.apply("dual_write", yes=True)
        ro.rollback(to="expand")
        with psycopg.connect(to_dsn(url)) as conn:
            since_flip = conn.execute(
                "SELECT extract(epoch FROM clock_timestamp() - updated_at) FROM phasegate_flag "
                "WHERE name = 'write_mode'").fetchone()[0]
    finally:
        ro.close()
    # Every process sees redis_only once rollback() returns: the flip is >= one TTL old.
    assert float(since_flip) >= ttl
