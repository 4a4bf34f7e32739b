"""The workload generator against real servers: what it records matches what the database
and Redis hold afterwards, in every write mode, and failures are recorded, not fatal."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy import create_engine, pool

from demo.workload import (
    RUN_FUNCTION,
    TICK_SOURCE,
    WORKLOAD_JOB_TYPE,
    OpRecord,
    WorkloadConfig,
    longest_stall_ms,
    percentile,
    run_workload,
    summarize,
)
from ledger.errors import ConfigError
from ledger.flags import READ_SOURCE, WRITE_MODE, set_flag
from tests.conftest import to_dsn


def _modes(db_url: str, write_mode: str, read_source: str = "redis") -> None:
    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.begin() as conn:
        set_flag(conn, WRITE_MODE, write_mode, "test")
        set_flag(conn, READ_SOURCE, read_source, "test")
    engine.dispose()


def _q(db_url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(to_dsn(db_url)) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _cfg(db_url: str, redis_url: str, **kw: object) -> WorkloadConfig:
    opts: dict = {"workers": 2, "rate": 150.0, "duration": 1.5, "flag_ttl": 0.2}
    opts.update(kw)
    return WorkloadConfig(db_url, redis_url, **opts)  # type: ignore[arg-type]


def _details(records: list[OpRecord], op: str) -> Counter[str]:
    return Counter(r.detail or "" for r in records if r.op == op and r.ok)


def test_dual_mode_records_match_database(db_url, redis_url) -> None:
    _modes(db_url, "dual")
    records = run_workload(_cfg(db_url, redis_url))
    s = summarize(records)
    assert s.ops > 100 and s.failed == 0, s.errors
    assert set(s.by_op) >= {"dispatch", "enqueue", "run", "record_run", "read_status"}

    enqueued = sum(1 for r in records if r.op == "enqueue" and r.ok)
    jobs = dict(_q(db_url, "SELECT status::text, count(*) FROM background_job "
                           "WHERE type = %s GROUP BY 1", WORKLOAD_JOB_TYPE))
    assert sum(jobs.values()) == enqueued
    runs = _details(records, "run")
    assert jobs.get("SUCCEEDED", 0) == runs["succeeded"]
    assert jobs.get("FAILED", 0) == runs["dead"]

    # Duplicate senders: one row per window, settled; exactly the winners sent.
    windows = _q(db_url, "SELECT status::text, count(*) FROM background_dispatch_window "
                         "WHERE source = %s GROUP BY 1", TICK_SOURCE)
    sent = sum(n for d, n in _details(records, "dispatch").items() if d != "duplicate")
    assert dict(windows) == {"ENQUEUED": sent}
    assert _details(records, "dispatch")["duplicate"] > 0

    # Attempts: succeeded -> 1 row, failed -> 1 row, retried -> 2 rows (attempts 1 and 2).
    attempts = _details(records, "record_run")
    rows = _q(db_url, "SELECT attempt, status::text, count(*) FROM background_function_run "
                      "WHERE function_name = %s GROUP BY 1, 2", RUN_FUNCTION)
    got = {(a, st): n for a, st, n in rows}
    assert got.get((2, "SUCCEEDED"), 0) == attempts["retried"]
    assert got.get((1, "FAILED"), 0) == attempts["retried"] + attempts["failed"]
    assert got.get((1, "SUCCEEDED"), 0) == attempts["succeeded"]
    # Reads in dual + read_source=redis come from Redis and find what was written.
    reads = _details(records, "read_status")
    assert reads and all(d.startswith("redis:") or d == "nothing-to-read" for d in reads)


def test_redis_only_at_baseline_never_needs_ledger_tables(make_db, redis_url) -> None:
    url = make_db("baseline")  # no flag table, no ledger tables: the legacy application
    records = run_workload(_cfg(url, redis_url))
    s = summarize(records)
    assert s.ops > 100 and s.failed == 0, s.errors
    r = redis_lib.Redis.from_url(redis_url)
    try:
        statuses = sum(1 for _ in r.scan_iter(match=f"jobstatus:{RUN_FUNCTION}:*"))
        ticks = r.xlen("phasegate:dispatch")  # the legacy keys expire with their 1 s window
    finally:
        r.close()
    assert statuses == sum(_details(records, "record_run").values())
    sent = sum(n for d, n in _details(records, "dispatch").items() if d != "duplicate")
    assert ticks == sent > 0
    enqueued = _q(url, "SELECT count(*) FROM background_job WHERE type = %s", WORKLOAD_JOB_TYPE)
    assert enqueued[0][0] == sum(1 for x in records if x.op == "enqueue" and x.ok)


def test_failures_are_recorded_and_the_workers_keep_going(db_url, redis_url) -> None:
    _modes(db_url, "dual")
    # The run ledger is gone while the flags say dual: every status write must fail.
    with psycopg.connect(to_dsn(db_url), autocommit=True) as conn:
        conn.execute("DROP TABLE background_function_run CASCADE")
    records = run_workload(_cfg(db_url, redis_url, duration=1.5))
    s = summarize(records)
    failed_ops = {r.op for r in records if not r.ok}
    assert s.failed_writes > 0 and "record_run" in failed_ops
    assert all("background_function_run" in (r.error or "") for r in records
               if not r.ok and r.op == "record_run")
    # Enqueues do not touch the run ledger: they kept succeeding after the failures.
    last_failure = max(r.t for r in records if not r.ok)
    assert any(r.op == "enqueue" and r.ok and r.t > last_failure - 1.0 for r in records)


def test_only_loopback_targets() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        WorkloadConfig("postgresql+psycopg://u:secret@db.example.com/x",
                       "redis://127.0.0.1:6379/0").validate()
    with pytest.raises(ConfigError) as err:
        WorkloadConfig("postgresql+psycopg://u:secret@10.0.0.5/x", "redis://127.0.0.1/0").validate()
    assert "secret" not in str(err.value)
    WorkloadConfig("postgresql+psycopg://u@127.0.0.1/x", "redis://localhost:1/0").validate()


def test_percentile_and_stall() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([], 99) == 0.0
    recs = [OpRecord(t, "enqueue", 10.0, True) for t in (0.0, 0.1, 0.2, 1.5, 1.6)]
    # Completions at 0.01, 0.11, 0.21, 1.51, 1.61: the gap 0.21 -> 1.51 is the stall.
    assert longest_stall_ms(recs, 0.0, 1.7) == pytest.approx(1300.0)
    s = summarize([*recs, OpRecord(0.5, "read_status", 5.0, False, "boom")], 0.0, 2.0)
    assert (s.ops, s.writes, s.failed_writes, s.reads, s.failed_reads) == (6, 5, 0, 1, 1)
    assert s.errors == {"read_status: boom": 1}
