"""Dispatch ledger on real Postgres and Redis: one send per key, legal moves only."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ledger.dispatch import DispatchEvent, RedisStreamSender
from ledger.errors import IllegalDispatchTransition
from tests.integration.ledger.conftest import q

AT = datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC)


class CountingSender:
    """Records every send (thread-safe); optionally fails."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[DispatchEvent] = []
        self.fail = fail
        self._lock = threading.Lock()

    def send(self, event: DispatchEvent) -> str:
        if self.fail:
            raise ConnectionError("queue down")
        with self._lock:
            self.sent.append(event)
            return f"evt-{len(self.sent)}"


def test_register_wins_once_and_duplicates_get_the_row(make_app) -> None:
    app = make_app("dual")
    first = app.dispatcher.register("cron.tick", AT, "cid-1")
    again = app.dispatcher.register("cron.tick", AT + timedelta(seconds=20), "cid-2")
    assert first.won and not again.won
    assert again.dispatch_key == first.dispatch_key == "cron.tick@2026-01-05T12:00:00Z"
    assert again.correlation_id == "cid-1" and again.status == "DISPATCHING"
    assert q(app.test_db_url, "SELECT count(*), min(correlation_id) FROM "
             "background_dispatch_window") == [(1, "cid-1")]


def test_window_length_is_per_source(make_app) -> None:
    app = make_app("db_only", windows={"hourly": 3600})
    assert app.dispatcher.dispatch_key("hourly", AT) == "hourly@2026-01-05T12:00:00Z"
    later = AT + timedelta(minutes=50)
    assert app.dispatcher.register("hourly", AT).won
    assert not app.dispatcher.register("hourly", later).won
    assert app.dispatcher.register("cron.tick", later).won  # 60 s default window
    assert app.dispatcher.register("hourly", AT + timedelta(hours=1)).won


def _threaded_senders(app, n: int, sender: CountingSender) -> list:
    barrier = threading.Barrier(n)
    results: list = []
    lock = threading.Lock()

    def go() -> None:
        barrier.wait()
        out = app.dispatch("cron.tick", AT)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("mode", ["dual", "db_only", "redis_only"])
def test_32_concurrent_threads_send_exactly_once(make_app, mode: str) -> None:
    sender = CountingSender()
    app = make_app(mode, sender=sender, pool_size=32)
    results = _threaded_senders(app, 32, sender)
    assert len(sender.sent) == 1
    assert sum(r.sent for r in results) == 1
    assert sum(r.duplicate for r in results) == 31
    if mode != "redis_only":
        rows = q(app.test_db_url, "SELECT status, event_id FROM background_dispatch_window")
        assert rows == [("ENQUEUED", "evt-1")]


def _process_sender(db_url: str, redis_url: str, threads: int, barrier, out) -> None:
    from ledger.app import LedgerApp

    sender = CountingSender()
    with LedgerApp(db_url, redis_url, flag_ttl=0, sender=sender, pool_size=threads) as app:
        def go() -> None:
            barrier.wait()
            app.dispatch("cron.tick", AT)

        workers = [threading.Thread(target=go) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    out.put(len(sender.sent))


@pytest.mark.parametrize("procs, threads", [
    (8, 4),  # 32 senders: threads inside processes
    (32, 1),  # 32 processes, one sender each
])
def test_32_concurrent_processes_send_exactly_once(make_app, redis_client, procs: int,
                                                   threads: int) -> None:
    app = make_app("dual")
    # fork: the children need nothing re-imported (spawning 32 interpreters takes ~40 s on
    # 2 cores); each child builds its own LedgerApp, so no connection crosses the fork.
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(procs * threads), ctx.Queue()
    workers = [ctx.Process(target=_process_sender,
                           args=(app.test_db_url, _url(redis_client), threads, barrier, out))
               for _ in range(procs)]
    for p in workers:
        p.start()
    sends = [out.get(timeout=120) for _ in workers]
    for p in workers:
        p.join(30)
    assert sum(sends) == 1
    assert q(app.test_db_url, "SELECT status, event_id FROM background_dispatch_window") == [
        ("ENQUEUED", "evt-1")]


def _url(client) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


def test_enqueue_failure_runs_inline_when_allowed(make_app) -> None:
    ran: list[str] = []
    app = make_app("dual", sender=CountingSender(fail=True),
                   inline=lambda e: ran.append(e.dispatch_key))
    out = app.dispatch("cron.tick", AT)
    assert out.status == "INLINE_EMERGENCY" and ran == [out.registration.dispatch_key]
    rows = q(app.test_db_url, "SELECT status, failure_message FROM background_dispatch_window")
    assert rows[0][0] == "INLINE_EMERGENCY" and "queue down" in rows[0][1]


def test_enqueue_failure_without_inline_is_recorded(make_app) -> None:
    app = make_app("db_only", sender=CountingSender(fail=True))
    out = app.dispatch("cron.tick", AT)
    assert out.status == "ENQUEUE_FAILED" and not out.sent
    assert q(app.test_db_url, "SELECT status FROM background_dispatch_window") == [
        ("ENQUEUE_FAILED",)]


@pytest.mark.parametrize("start, wanted", [
    ("ENQUEUED", "INLINE_EMERGENCY"), ("ENQUEUE_FAILED", "ENQUEUED"),
    ("INLINE_EMERGENCY", "ENQUEUE_FAILED"), (None, "DISPATCHING"),
])
def test_illegal_moves_raise_and_change_nothing(make_app, start, wanted) -> None:
    app = make_app("db_only")
    reg = app.dispatcher.register("cron.tick", AT)
    if start:
        app.dispatcher.mark(reg.dispatch_key, start, event_id="e1")
    with pytest.raises(IllegalDispatchTransition) as err:
        app.dispatcher.mark(reg.dispatch_key, wanted)
    assert err.value.wanted == wanted
    assert q(app.test_db_url, "SELECT status FROM background_dispatch_window") == [
        (start or "DISPATCHING",)]


def test_sender_that_died_in_dispatching_is_recovered(make_app) -> None:
    sender = CountingSender()
    app = make_app("dual", sender=sender)
    reg = app.dispatcher.register("cron.tick", AT, "cid-dead")  # ... and the sender dies
    assert app.dispatcher.stuck(older_than=3600) == []
    q(app.test_db_url, "UPDATE background_dispatch_window SET created_at = now() - "
      "interval '10 minutes', updated_at = now() - interval '10 minutes'")
    stuck = app.dispatcher.stuck(older_than=60)
    assert [s.dispatch_key for s in stuck] == [reg.dispatch_key]
    out = app.dispatcher.recover(reg.dispatch_key, older_than=60)
    assert out is not None and out.status == "ENQUEUED"
    assert app.dispatcher.recover(reg.dispatch_key, older_than=60) is None
    assert len(sender.sent) == 1 and sender.sent[0].correlation_id == "cid-dead"
    assert q(app.test_db_url, "SELECT status FROM background_dispatch_window") == [("ENQUEUED",)]


def test_dual_mode_respects_a_stale_redis_only_sender(make_app, redis_url) -> None:
    """During flag propagation a redis_only process may send first: dual must not resend."""
    legacy_sender, new_sender = CountingSender(), CountingSender()
    legacy = make_app("redis_only", sender=legacy_sender)
    assert legacy.dispatch("cron.tick", AT).sent
    dual = make_app("dual", db_url=legacy.test_db_url, sender=new_sender)
    out = dual.dispatch("cron.tick", AT)
    assert not out.sent and new_sender.sent == []
    assert q(dual.test_db_url, "SELECT status, event_id FROM background_dispatch_window") == [
        ("ENQUEUED", "legacy-sender")]


def test_default_sender_uses_a_redis_stream(make_app, redis_client) -> None:
    app = make_app("db_only")
    assert isinstance(app.dispatcher.sender, RedisStreamSender)
    out = app.dispatch("cron.tick", AT, payload={"n": 1}, correlation_id="cid-s")
    entries = redis_client.xrange("phasegate:dispatch")
    assert [e[0] for e in entries] == [out.event_id]
    assert entries[0][1]["correlation_id"] == "cid-s"
