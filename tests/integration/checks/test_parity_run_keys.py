"""Issue 13 in the parity and shadow-read checks: runs are matched by their columns, names
holding ':' or '%' are compared apart, and legacy ambiguous keys are counted (WARN)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from checks import Verdict
from demo.seed import write_legacy_status
from ledger.redis_layout import INDEX_KEY, legacy_run_key, legacy_status_key, run_key, status_key
from ledger.status import RunStatus
from tests.integration.checks.conftest import Run, add_runs, ago

SINCE = datetime.now(UTC) - timedelta(hours=1)
SEND, SEND_ALIAS = ("email:send", "user42"), ("email", "send:user42")


@pytest.fixture
def r(redis_url: str):
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def _status(r, fn: str, run_id: str, status: str = "SUCCEEDED", attempt: int = 1,
            age: float = 600) -> None:
    """A status hash as the ledger writes it (escaped key, key encoding when escaped)."""
    at = datetime.now(UTC) - timedelta(seconds=age)
    fields = RunStatus(fn, run_id, attempt, status, run_key(fn, run_id, attempt), "redis",
                       at.isoformat()).to_hash()
    r.hset(status_key(fn, run_id), mapping=fields)
    r.zadd(INDEX_KEY, {status_key(fn, run_id): at.timestamp()})


def _legacy(r, fn: str, run_id: str, status: str = "SUCCEEDED", age: float = 600) -> str:
    pipe = r.pipeline()
    write_legacy_status(pipe, fn, run_id, 1, status, datetime.now(UTC) - timedelta(seconds=age))
    pipe.execute()
    return legacy_status_key(fn, run_id)


def test_runs_that_shared_a_key_are_compared_apart(run_check: Run, db_url: str,
        redis_url: str, r) -> None:
    add_runs(db_url, {"function_name": SEND[0], "run_id": SEND[1], "age": ago(600)},
             {"function_name": SEND_ALIAS[0], "run_id": SEND_ALIAS[1], "status": "FAILED",
              "age": ago(600)})
    _status(r, *SEND)
    _status(r, *SEND_ALIAS, status="FAILED")
    res = run_check("parity", redis_url=redis_url, parity_since=SINCE)
    assert res.verdict is Verdict.PASS, res.evidence
    assert "2 Redis status(es) and 2 DB run(s)" in res.summary
    r.hset(status_key(*SEND_ALIAS), "status", "SUCCEEDED")  # now one of them differs
    res = run_check("parity", redis_url=redis_url, parity_since=SINCE)
    assert res.verdict is Verdict.FAIL
    assert [(e["problem"], e["run_key"]) for e in res.evidence] == [
        ("status differs", "email:send%3Auser42:1")]


def test_a_row_still_under_its_legacy_key_is_its_runs(run_check: Run, db_url: str,
        redis_url: str, r) -> None:
    add_runs(db_url, {"function_name": SEND[0], "run_id": SEND[1], "age": ago(600),
                      "run_key": legacy_run_key(*SEND, 1)})
    _status(r, *SEND)
    res = run_check("parity", redis_url=redis_url, parity_since=SINCE)
    assert res.verdict is Verdict.PASS, res.evidence


def test_legacy_ambiguous_keys_warn_with_their_count(run_check: Run, db_url: str,
        redis_url: str, r) -> None:
    add_runs(db_url, {"function_name": "f", "run_id": "ok", "age": ago(600)},
             {"function_name": SEND[0], "run_id": SEND[1], "age": ago(600)})
    _status(r, "f", "ok")
    old = _legacy(r, *SEND)  # the run's status, under the key it shared with SEND_ALIAS
    orphan = _legacy(r, "100%", "x")  # in no run's ledger row
    res = run_check("parity", redis_url=redis_url, parity_since=SINCE)
    assert res.verdict is Verdict.WARN, (res.summary, res.evidence)
    assert "2 legacy ambiguous key(s)" in res.summary and "no mismatch" in res.summary
    assert sorted(e["key"] for e in res.evidence) == sorted([old, orphan])


def test_another_runs_legacy_hash_is_not_this_runs_status(run_check: Run, db_url: str,
        redis_url: str, r) -> None:
    """('a%3Ab', 'x')'s legacy hash sits at ('a:b', 'x')'s key: that run has no status."""
    add_runs(db_url, {"function_name": "a:b", "run_id": "x", "age": ago(600)})
    key = _legacy(r, "a%3Ab", "x")
    assert key == status_key("a:b", "x")
    res = run_check("parity", redis_url=redis_url, parity_since=SINCE, parity_grace_seconds=1)
    assert res.verdict is Verdict.FAIL
    problems = sorted(e["problem"] for e in res.evidence)
    assert problems == ["legacy ambiguous key", "missing in redis"]


def test_shadow_read_skips_legacy_keys(run_check: Run, db_url: str,
        redis_url: str, r) -> None:
    add_runs(db_url, {"function_name": SEND_ALIAS[0], "run_id": SEND_ALIAS[1], "status": "FAILED",
                      "age": ago(600)})
    _status(r, *SEND_ALIAS, status="FAILED")
    _legacy(r, *SEND)
    res = run_check("shadow_read", redis_url=redis_url)
    assert res.verdict is Verdict.PASS, res.evidence
    assert "1 run(s) read through both paths" in res.summary
    assert "1 legacy ambiguous key(s) not compared" in res.summary
