"""The write path keeps working while the rollout drops and re-creates the ledger tables
(expand rolled back, then re-applied) under a running process."""

from __future__ import annotations

from ledger.db import stale_plan
from migrations import api as migrations_api
from tests.integration.ledger.conftest import q, set_modes


def test_app_survives_expand_rollback_and_reapply(make_app) -> None:
    app = make_app("dual", point="expand", pool_size=1)
    app.runner.register("t", lambda ctx: ctx.once(f"e{ctx.job_id}", lambda conn: 1))
    url = app.test_db_url
    for i in range(8):  # past psycopg's prepare threshold (5): statements are prepared
        app.record_run("f", f"r{i}", outcome="succeeded")
        app.dispatch(f"s{i}")
        app.enqueue_job("t")
        app.run_one()
    set_modes(url, "redis_only")
    app.record_run("f", "legacy", outcome="succeeded")
    migrations_api.downgrade(url, "kit")  # the expand rollback drops tables and enums
    app.record_run("f", "during", outcome="succeeded")
    app.enqueue_job("t")
    assert app.run_one().outcome == "succeeded"
    migrations_api.upgrade(url, "expand")  # ... and expand is applied again
    set_modes(url, "dual")
    assert app.record_run("f", "after", outcome="succeeded").status == "SUCCEEDED"
    assert app.dispatch("s-after").sent
    job = app.enqueue_job("t")
    assert app.run_one().outcome == "succeeded"
    # The recreated tables hold exactly what was written after the re-apply.
    assert sorted(q(url, "SELECT run_id, status FROM background_function_run")) == [
        ("after", "SUCCEEDED"), (f"job-{job}", "SUCCEEDED")]
    assert q(url, "SELECT source, status FROM background_dispatch_window") == [
        ("s-after", "ENQUEUED")]


def test_stale_plan_recognises_the_server_errors() -> None:
    class E(Exception):
        def __init__(self, state: str, msg: str) -> None:
            super().__init__(msg)
            self.sqlstate = state

    assert stale_plan(E("0A000", "cached plan must not change result type"))
    assert stale_plan(E("XX000", "cache lookup failed for type 16422"))
    assert not stale_plan(E("0A000", "something else unsupported"))
    assert not stale_plan(E("23505", "duplicate key value"))
