"""Dispatch windows and keys, correlation ids, log formatting, operator flag parsing."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import correlation
from ledger.dispatch import DispatchLedger
from ledger.logs import CorrelationFilter, JsonFormatter


def _ledger(**windows: float) -> DispatchLedger:
    # register/dispatch need servers; window and key derivation do not.
    return DispatchLedger(db=None, redis=None, modes=None, windows=windows)  # type: ignore[arg-type]


def test_dispatch_key_is_source_and_window_start() -> None:
    d = _ledger(hourly=3600)
    at = datetime(2026, 1, 5, 12, 34, 56, tzinfo=UTC)
    assert d.dispatch_key("tick", at) == "tick@2026-01-05T12:34:00Z"
    assert d.dispatch_key("hourly", at) == "hourly@2026-01-05T12:00:00Z"
    assert d.window("hourly", at) == (datetime(2026, 1, 5, 12, tzinfo=UTC),
                                      datetime(2026, 1, 5, 13, tzinfo=UTC))


def test_naive_and_offset_times_mean_the_same_instant() -> None:
    d = _ledger()
    at = datetime(2026, 1, 5, 12, 0, 30)
    plus2 = datetime(2026, 1, 5, 14, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert d.dispatch_key("s", at) == d.dispatch_key("s", plus2)


@settings(max_examples=50, deadline=None)
@given(ts=st.integers(0, 4_000_000_000), window=st.sampled_from([1, 30, 60, 300, 3600, 86400]))
def test_every_instant_falls_in_exactly_its_window(ts: int, window: int) -> None:
    d = _ledger(s=window)
    at = datetime.fromtimestamp(ts, UTC)
    start, end = d.window("s", at)
    assert start <= at < end and (end - start).total_seconds() == window
    assert d.dispatch_key("s", start) == d.dispatch_key("s", at)
    assert d.dispatch_key("s", end) != d.dispatch_key("s", at)


def test_correlation_ids_nest_and_do_not_leak_across_threads() -> None:
    assert correlation.current() is None
    with correlation.use("outer") as outer:
        assert outer == "outer" and correlation.ensure() == "outer"
        with correlation.use() as inner:
            assert inner == "outer"  # None keeps the current id
        with correlation.use("other"):
            assert correlation.current() == "other"
        seen: list[str | None] = []
        t = threading.Thread(target=lambda: seen.append(correlation.current()))
        t.start()
        t.join()
        assert seen == [None]
    assert correlation.current() is None
    assert correlation.ensure() != correlation.ensure()  # fresh ids outside a context


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("phasegate.ledger.x", logging.INFO, __file__, 1, msg, (), None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_json_lines_carry_the_correlation_id_and_extras_and_mask_secrets() -> None:
    with correlation.use("cid-7"):
        record = _record("connect postgresql://u:hunter2@db/x failed", job_id=5)
        assert CorrelationFilter().filter(record)
    doc = json.loads(JsonFormatter().format(record))
    assert doc["correlation_id"] == "cid-7" and doc["job_id"] == 5
    assert doc["level"] == "INFO" and "hunter2" not in doc["message"]
    outside = _record("x")
    CorrelationFilter().filter(outside)
    assert outside.correlation_id == "-"

