"""Issue 13, unambiguous keys: two runs whose names differ only in where a ':' falls never
share a run-ledger row or a Redis hash, in any write mode; rows and hashes written under the
pre-encoding keys are rekeyed, refused or moved, never read as another run's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from demo.seed import write_legacy_status
from ledger import redis_layout
from ledger.redis_layout import INDEX_KEY, run_key, status_key
from tests.integration.ledger.conftest import q, set_modes

# The finding: under the old 'function:run_id:attempt' these were one key.
SEND = ("email:send", "user42")
SEND_ALIAS = ("email", "send:user42")

MODES = [("redis_only", "redis"), ("dual", "redis"), ("dual", "db"), ("db_only", "db")]


def _legacy_run(db_url: str, fn: str, run_id: str, attempt: int = 1,
                status: str = "RUNNING") -> None:
    """A run-ledger row as the pre-encoding code wrote it: under its legacy key."""
    q(db_url, "INSERT INTO background_function_run (run_key, function_name, run_id, attempt, "
      "status) VALUES (%s, %s, %s, %s, %s::background_function_run_status)",
      (redis_layout.legacy_run_key(fn, run_id, attempt), fn, run_id, attempt, status))


def _legacy_hash(redis_client, fn: str, run_id: str, attempt: int = 1,
                 status: str = "SUCCEEDED", **extra: str) -> str:
    """A Redis status hash as the pre-encoding code wrote it (demo.seed's legacy writer)."""
    pipe = redis_client.pipeline()
    write_legacy_status(pipe, fn, run_id, attempt, status)
    key = redis_layout.legacy_status_key(fn, run_id)
    if extra:
        pipe.hset(key, mapping=extra)
    pipe.execute()
    return key


@pytest.mark.parametrize(("write_mode", "read_source"), MODES)
def test_a_status_read_never_returns_the_other_run(make_app, write_mode, read_source) -> None:
    app = make_app(write_mode, read_source=read_source)
    app.record_run(*SEND, outcome="succeeded")
    app.record_run(*SEND_ALIAS, attempt=1, outcome="failed", error=ValueError("bounced"))
    send, alias = app.read_status(*SEND), app.read_status(*SEND_ALIAS)
    assert (send.function_name, send.run_id, send.status) == (*SEND, "SUCCEEDED")
    assert (alias.function_name, alias.run_id, alias.status) == (*SEND_ALIAS, "FAILED")
    assert send.run_key != alias.run_key
    assert send.run_key == run_key(*SEND, 1) and alias.run_key == run_key(*SEND_ALIAS, 1)
    if write_mode != "redis_only":
        assert q(app.test_db_url, "SELECT function_name, run_id, status::text, run_key FROM "
                 "background_function_run ORDER BY run_key") == sorted([
            (*SEND, "SUCCEEDED", run_key(*SEND, 1)),
            (*SEND_ALIAS, "FAILED", run_key(*SEND_ALIAS, 1))], key=lambda r: r[3])


@pytest.mark.parametrize("write_mode", ["redis_only", "dual"])
def test_each_run_has_its_own_hash(make_app, redis_client, write_mode) -> None:
    app = make_app(write_mode)
    app.record_run(*SEND, outcome="succeeded")
    app.record_run(*SEND_ALIAS, outcome="running")
    keys = sorted(k for k in redis_client.scan_iter(match="jobstatus:*") if k != INDEX_KEY)
    assert keys == sorted([status_key(*SEND), status_key(*SEND_ALIAS)])
    assert redis_client.hget(status_key(*SEND), "status") == "SUCCEEDED"
    assert redis_client.hget(status_key(*SEND_ALIAS), "status") == "RUNNING"
    assert redis_client.zcard(INDEX_KEY) == 2


def test_names_without_colon_or_percent_keep_their_keys(make_app, redis_client) -> None:
    app = make_app("dual")
    app.record_run("email.send", "job-7", outcome="succeeded")
    assert redis_client.hget("jobstatus:email.send:job-7", "run_key") == "email.send:job-7:1"
    assert "key_encoding" not in redis_client.hgetall("jobstatus:email.send:job-7")
    assert q(app.test_db_url, "SELECT run_key FROM background_function_run") == [
        ("email.send:job-7:1",)]


@pytest.mark.parametrize("name", [
    ("a:b", "c"), ("a", "b:c"), ("a%3Ab", "c"), ("a%b", "100%"), ("::", ""), ("ünï:cødé", "ж:1"),
])
def test_awkward_names_round_trip_through_every_store(make_app, name) -> None:
    app = make_app("dual")
    st = app.record_run(*name, outcome="running")
    assert redis_layout.parse_run_key(st.run_key) == (*name, 1)
    app.record_run(*name, outcome="succeeded")
    for source in ("redis", "db"):
        set_modes(app.test_db_url, "dual", source)
        got = app.read_status(*name)
        assert (got.function_name, got.run_id, got.status, got.source) == (*name, "SUCCEEDED", source)


# ----------------------------------------------------------------- the database's legacy rows

def test_an_attempt_started_under_its_legacy_key_settles_once(make_app) -> None:
    """Started by the pre-encoding code, finished (and started again) by this code: one row,
    rekeyed, settled; no duplicate and no IllegalRunTransition across the deploy."""
    app = make_app("dual")
    _legacy_run(app.test_db_url, *SEND)
    again = app.runs.start(*SEND, 1)
    assert not again.created and again.run_key == run_key(*SEND, 1)
    app.record_run(*SEND, outcome="succeeded")
    assert q(app.test_db_url, "SELECT run_key, status::text FROM background_function_run") == [
        (run_key(*SEND, 1), "SUCCEEDED")]


# ('email', 'send:user42') is left out: the pre-encoding code could not store it beside
# ('email:send', 'user42'), their legacy keys being one.
AWKWARD = [("email:send", "user42"), ("a%3Ab", "%25"), ("100%", ""), ("", "::"),
           ("ünï:cødé", "ж%3Aж"), ("tab\tx", "a\nb:%"), ("a:b", "%3A")]


def test_the_sql_rekey_escapes_as_python_does(make_app) -> None:
    """The rekey statement computes escaped keys in SQL (ledger/sql/runs.sql); each row it
    moves lands on the key Python computes for the same names."""
    app = make_app("db_only")
    for fn, run_id in AWKWARD:
        _legacy_run(app.test_db_url, fn, run_id, attempt=3)
    for fn, run_id in AWKWARD:
        app.runs.start(fn, run_id, 9)  # a later attempt: moves the legacy attempt 3 first
    rows = q(app.test_db_url, "SELECT function_name, run_id, attempt, run_key "
             "FROM background_function_run WHERE attempt = 3")
    assert sorted(rows) == sorted((fn, rid, 3, run_key(fn, rid, 3)) for fn, rid in AWKWARD)


def test_a_legacy_row_holding_another_runs_key_is_moved_not_taken(make_app) -> None:
    """'a%3Ab:x:1' was the legacy key of ('a%3Ab', 'x', 1) and is the escaped key of
    ('a:b', 'x', 1): starting the latter moves the former to its own key first."""
    app = make_app("db_only", read_source="db")
    _legacy_run(app.test_db_url, "a%3Ab", "x", status="SUCCEEDED")
    assert redis_layout.legacy_run_key("a%3Ab", "x", 1) == run_key("a:b", "x", 1)
    st = app.record_run("a:b", "x", outcome="failed", error=ValueError("no"))
    assert (st.function_name, st.status) == ("a:b", "FAILED")
    assert sorted(q(app.test_db_url, "SELECT function_name, run_key, status::text FROM "
                    "background_function_run")) == [
        ("a%3Ab", run_key("a%3Ab", "x", 1), "SUCCEEDED"), ("a:b", run_key("a:b", "x", 1), "FAILED")]
    assert app.read_status("a%3Ab", "x").status == "SUCCEEDED"


def test_a_chain_of_legacy_keys_is_moved_link_by_link(make_app) -> None:
    """('a%3Ab', 'x')'s escaped key is ('a%253Ab', 'x')'s legacy key: that one moves first."""
    app = make_app("db_only")
    _legacy_run(app.test_db_url, "a%3Ab", "x", status="SUCCEEDED")
    _legacy_run(app.test_db_url, "a%253Ab", "x", status="SUCCEEDED")
    assert redis_layout.legacy_run_key("a%253Ab", "x", 1) == run_key("a%3Ab", "x", 1)
    assert app.runs.start("a:b", "x", 1).created
    rows = q(app.test_db_url, "SELECT function_name, run_key FROM background_function_run")
    assert sorted(rows) == sorted((fn, run_key(fn, "x", 1)) for fn in ("a:b", "a%3Ab", "a%253Ab"))


def test_a_key_held_by_a_row_that_cannot_move_refuses_the_write(make_app) -> None:
    """('a%3Ab', 'x', 1) twice (legacy and escaped: a mixed fleet's duplicate): its legacy
    row cannot move, so ('a:b', 'x', 1), whose key it holds, is refused, not merged."""
    from ledger.errors import RunKeyConflict

    app = make_app("db_only")
    _legacy_run(app.test_db_url, "a%3Ab", "x", status="SUCCEEDED")
    app.runs.start("a%3Ab", "x", 1)  # moves the legacy row: now put a legacy twin back
    _legacy_run(app.test_db_url, "a%3Ab", "x", status="SUCCEEDED")
    with pytest.raises(RunKeyConflict, match="held by a legacy row"):
        app.runs.start("a:b", "x", 1)
    with pytest.raises(RunKeyConflict):
        app.runs.succeed(run_key("a:b", "x", 1))
    assert q(app.test_db_url, "SELECT count(*) FROM background_function_run "
             "WHERE function_name = 'a:b'") == [(0,)]


def test_start_many_rekeys_the_legacy_rows_of_its_batch(make_app) -> None:
    from ledger.runs import RunStart

    app = make_app("db_only")
    _legacy_run(app.test_db_url, *SEND)
    recs = app.runs.start_many([RunStart(*SEND), RunStart(*SEND_ALIAS), RunStart("f", "plain")])
    assert sorted((r.run_key, r.created) for r in recs) == sorted([
        (run_key(*SEND, 1), False), (run_key(*SEND_ALIAS, 1), True), ("f:plain:1", True)])
    assert q(app.test_db_url, "SELECT count(*) FROM background_function_run") == [(3,)]


# ----------------------------------------------------------------- Redis's legacy hashes

@pytest.mark.parametrize("write_mode", ["redis_only", "dual"])
def test_a_legacy_hash_is_never_read_as_either_run(make_app, redis_client, write_mode) -> None:
    """'jobstatus:email:send:user42' was both runs' key: it cannot say whose it is."""
    app = make_app(write_mode)
    _legacy_hash(redis_client, *SEND)
    assert app.read_status(*SEND) is None and app.read_status(*SEND_ALIAS) is None


def test_a_legacy_hash_at_an_escaped_key_is_not_that_runs(make_app, redis_client) -> None:
    """The legacy hash of ('a%3Ab', 'x') sits at the escaped key of ('a:b', 'x'): it is not
    read as that run's, and that run's first write replaces it (no field of it survives)."""
    app = make_app("redis_only")
    key = _legacy_hash(redis_client, "a%3Ab", "x", error="the other run's error")
    assert key == status_key("a:b", "x")
    assert app.read_status("a:b", "x") is None
    app.record_run("a:b", "x", outcome="running")
    h = redis_client.hgetall(key)
    assert h["status"] == "RUNNING" and "error" not in h and h["key_encoding"] == "escaped"
    assert app.read_status("a:b", "x").status == "RUNNING"


def test_reconcile_moves_legacy_hashes_to_their_runs_keys(make_app, redis_client) -> None:
    app = make_app("dual")
    app.record_run(*SEND, outcome="succeeded")
    app.record_run("a%b", "r", outcome="failed", error=ValueError("x"))
    for fn, run_id in (SEND, ("a%b", "r")):  # what the pre-encoding code had written
        redis_client.delete(status_key(fn, run_id))
        _legacy_hash(redis_client, fn, run_id, status="RUNNING")
    orphan = _legacy_hash(redis_client, "nobody:knows", "r9")  # no run in the ledger
    report = app.reconcile(timedelta(hours=1))
    assert report.legacy_moved == 2
    assert redis_client.hget(status_key(*SEND), "status") == "SUCCEEDED"
    assert redis_client.hget(status_key("a%b", "r"), "status") == "FAILED"
    for fn, run_id in (SEND, ("a%b", "r")):
        legacy = redis_layout.legacy_status_key(fn, run_id)
        assert not redis_client.exists(legacy) and redis_client.zscore(INDEX_KEY, legacy) is None
    assert redis_client.exists(orphan)  # no run of the ledger could own it: left to its TTL
    assert app.read_status(*SEND).status == "SUCCEEDED"
    again = app.reconcile(timedelta(hours=1))
    assert (again.repaired, again.legacy_moved) == (0, 0)
