"""Dedupe checks: one dispatch per ``dispatch_key``, nothing both enqueued and run inline,
no sender stuck between claiming a key and enqueueing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query
from checks.timeparam import as_datetime


@check("dedupe_dispatch_unique", "no dispatch_key registered or run twice",
       reads=("dedupe_days",), sql_file="dedupe")
def dispatch_unique(probe: Probe) -> Outcome:
    # Runs are compared over a bounded recent window (dedupe_since, else the last
    # dedupe_days): the question is whether dedupe works now, and the scan must stay cheap on
    # a big ledger.
    since = as_datetime(probe.ctx.params.get("dedupe_since")) or (
        datetime.now(UTC) - timedelta(days=float(probe.setting("dedupe_days"))))
    enforced = probe.one(query("dedupe", "unique_key_enforced")).get("enforced")
    dup_windows = [] if enforced else probe.rows(query("dedupe", "duplicate_dispatch_keys"),
                                                 {"limit": MAX_EVIDENCE})
    dup_runs = probe.rows(query("dedupe", "dispatch_key_many_runs"),
                          {"limit": MAX_EVIDENCE, "since": since})
    bad = [{"problem": "key registered twice", **r} for r in dup_windows]
    bad += [{"problem": "key ran as several runs", **r} for r in dup_runs]
    if not bad:
        how = "a valid unique index enforces one registration" if enforced else "no key registered twice"
        return Outcome(Verdict.PASS, f"{how}; no key run as two runs since {since:%Y-%m-%d %H:%M}")
    return Outcome(Verdict.FAIL, f"{len(dup_windows)} key(s) registered twice, {len(dup_runs)} "
                   "key(s) run more than once (samples)", tuple(bad))


@check("dedupe_enqueued_and_inline", "no window both ENQUEUED and run INLINE_EMERGENCY",
       reads=("dedupe_max_window_seconds",), sql_file="dedupe")
def enqueued_and_inline(probe: Probe) -> Outcome:
    # Windows longer than this are not compared (cron windows are minutes long).
    max_window = float(probe.setting("dedupe_max_window_seconds"))
    rows = probe.rows(query("dedupe", "enqueued_and_inline"),
                      {"limit": MAX_EVIDENCE, "max_window": max_window})
    return Outcome.of(rows, "no source window was both enqueued and run inline",
                      f"{len(rows)}{'+' if len(rows) >= MAX_EVIDENCE else ''} overlapping window "
                      "pair(s) both ENQUEUED and INLINE_EMERGENCY")


@check("dedupe_stuck_dispatching", "no window DISPATCHING longer than the threshold",
       reads=("stuck_dispatch_seconds",), severity="major", sql_file="dedupe")
def stuck_dispatching(probe: Probe) -> Outcome:
    seconds = float(probe.setting("stuck_dispatch_seconds"))
    rows = probe.rows(query("dedupe", "stuck_dispatching"),
                      {"seconds": seconds, "limit": MAX_EVIDENCE})
    if not rows:
        return Outcome(Verdict.PASS, f"no window DISPATCHING for more than {seconds:g}s")
    n = probe.one(query("dedupe", "stuck_dispatching_count"), {"seconds": seconds})["n"]
    return Outcome(Verdict.FAIL, f"{n} window(s) DISPATCHING for more than {seconds:g}s", tuple(rows))
