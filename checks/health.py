"""Health preflight: the server is in a state where lock-taking DDL will not stall the app.

The preflight set run before every lock-taking phase (``rollout.gates.PREFLIGHT_CHECKS``);
the expand and contract phases also gate on them.
"""

from __future__ import annotations

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query


@check("health_long_transactions", "no long-running transactions",
       reads=("max_transaction_seconds",), sql_file="health")
def long_transactions(probe: Probe) -> Outcome:
    seconds = float(probe.setting("max_transaction_seconds"))
    rows = probe.rows(query("health", "long_transactions"), {"seconds": seconds, "limit": MAX_EVIDENCE})
    return Outcome.of(rows, f"no transaction open longer than {seconds:g}s",
                      f"{len(rows)} transaction(s) open longer than {seconds:g}s")


@check("health_idle_in_transaction", "no session idle in transaction",
       reads=("max_idle_in_transaction_seconds",), sql_file="health")
def idle_in_transaction(probe: Probe) -> Outcome:
    seconds = float(probe.setting("max_idle_in_transaction_seconds"))
    rows = probe.rows(query("health", "idle_in_transaction"), {"seconds": seconds, "limit": MAX_EVIDENCE})
    return Outcome.of(rows, f"no session idle in transaction longer than {seconds:g}s",
                      f"{len(rows)} session(s) idle in transaction longer than {seconds:g}s")


@check("health_lock_waiters", "no sessions queued behind locks",
       reads=("max_lock_waiters",), sql_file="health")
def lock_waiters(probe: Probe) -> Outcome:
    allowed = int(probe.setting("max_lock_waiters"))
    rows = probe.rows(query("health", "lock_waiters"), {"limit": MAX_EVIDENCE})
    if len(rows) <= allowed:
        return Outcome(Verdict.PASS, f"{len(rows)} lock waiter(s) (allowed {allowed})", tuple(rows))
    return Outcome(Verdict.FAIL, f"{len(rows)} session(s) waiting for locks (allowed {allowed})",
                   tuple(rows))


@check("health_replication_lag", "replicas within the replay-lag bound",
       reads=("max_replication_lag_seconds", "max_replication_lag_bytes"), sql_file="health")
def replication_lag(probe: Probe) -> Outcome:
    max_seconds = float(probe.setting("max_replication_lag_seconds"))
    max_bytes = int(probe.setting("max_replication_lag_bytes"))
    rows = probe.rows(query("health", "replication_lag"))
    if not rows:
        return Outcome(Verdict.PASS, "no replicas attached")
    bad = [r for r in rows if (r["replay_lag_seconds"] or 0) > max_seconds
           or (r["replay_lag_bytes"] or 0) > max_bytes]
    text = f"{len(rows)} replica(s); bound {max_seconds:g}s / {max_bytes} bytes"
    if not bad:
        return Outcome(Verdict.PASS, f"{text}: all within", tuple(rows))
    return Outcome(Verdict.FAIL, f"{text}: {len(bad)} lagging", tuple(bad))
