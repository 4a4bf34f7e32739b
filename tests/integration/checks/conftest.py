"""Helpers for the gate-check tests: run one check, and seed rows with plain SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from checks import CheckResult, run_checks
from ledger.redis_layout import run_key
from rollout.gates import context
from tests.conftest import to_dsn

Run = Callable[..., CheckResult]
Seed = Callable[..., None]


@pytest.fixture
def run_check(db_url: str) -> Run:
    """``run_check("id", url=None, redis_url=None, **params)`` on the test's database, with
    every setting at its ``Settings`` default unless ``params`` overrides it."""

    def run(check_id: str, *, url: str | None = None, redis_url: str | None = None,
            **params: Any) -> CheckResult:
        ctx = context(url or db_url, redis_url, **params)
        [result] = run_checks([check_id], ctx)
        return result

    return run


@pytest.fixture
def seed(db_url: str) -> Seed:
    """``seed(sql, params)``: run one statement against the test's database (autocommit)."""

    def execute(statement: str, params: Any = None, *, url: str | None = None) -> None:
        with psycopg.connect(to_dsn(url or db_url), autocommit=True) as conn:
            conn.execute(statement, params)

    return execute


RUN_SQL = (
    "INSERT INTO background_function_run (run_key, function_name, run_id, attempt, dispatch_key, "
    "job_id, requested_at, started_at, finished_at, status, updated_at) VALUES "
    "(%(run_key)s, %(function_name)s, %(run_id)s, "
    "%(attempt)s, %(dispatch_key)s, %(job_id)s, now() - %(age)s, now() - %(age)s, "
    "CASE WHEN %(status)s = 'RUNNING' THEN NULL ELSE now() - %(age)s END, "
    "%(status)s::background_function_run_status, now() - %(age)s)")
WINDOW_SQL = (
    "INSERT INTO background_dispatch_window (dispatch_key, source, window_start, window_end, "
    "correlation_id, status, created_at) VALUES (%(key)s, %(source)s, %(start)s, %(end)s, 'corr', "
    "%(status)s::background_dispatch_status, now() - %(created_age)s)")


def ago(seconds: float = 0.0, **kw: float) -> timedelta:
    return timedelta(seconds=seconds, **kw)


def add_runs(url: str, *runs: dict[str, Any]) -> None:
    """Insert run-ledger rows; each dict gives function_name and run_id, the rest defaults
    (run_key: the ledger's, ``ledger.redis_layout.run_key``)."""
    defaults = {"attempt": 1, "status": "SUCCEEDED", "dispatch_key": None, "job_id": None,
                "age": ago()}
    rows = [{**defaults, **r} for r in runs]
    rows = [{"run_key": run_key(r["function_name"], r["run_id"], r["attempt"]), **r} for r in rows]
    with psycopg.connect(to_dsn(url), autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(RUN_SQL, rows)


def add_windows(url: str, *windows: dict[str, Any]) -> None:
    """Insert dispatch windows; each dict gives key, status, start and end."""
    now = datetime.now(UTC)
    defaults = {"source": "cron", "created_age": ago(), "start": now, "end": now}
    with psycopg.connect(to_dsn(url), autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(WINDOW_SQL, [{**defaults, **w} for w in windows])
