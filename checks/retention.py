"""Retention: history older than the bound is gone, and nothing protected was deleted.

What "nothing protected was deleted" can be checked from the data (documented in
``checks/README.md``):

* every OPEN dead letter still has its job's run history (``run_id = 'job-<id>'``);
* every recent run (the last ``retention_guard_seconds``) that names a
  ``dispatch_key`` still has its dispatch window: recent windows are inside their dedupe
  window, and deleting one would let a second send through;
* the cutoff the pruner recorded (``pruned_before``) is not younger than
  ``now() - retention_days``: it never reached inside the retention bound.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query
from checks.timeparam import as_datetime


def _bound_seconds(probe: Probe) -> float:
    days = float(probe.setting("retention_days"))
    slack = float(probe.setting("retention_slack_hours"))
    return days * 86400 + slack * 3600


@check("retention_bound", "oldest history within the retention bound",
       reads=("retention_days", "retention_slack_hours"), severity="major", sql_file="retention")
def retention_bound(probe: Probe) -> Outcome:
    bound = _bound_seconds(probe)
    args = {"bound": bound, "limit": MAX_EVIDENCE}
    runs = probe.rows(query("retention", "runs_past_bound"), args)
    windows = probe.rows(query("retention", "windows_past_bound"), args)
    bad = [{"kind": "run", **r} for r in runs] + [{"kind": "window", **r} for r in windows]
    days = bound / 86400
    if not bad:
        return Outcome(Verdict.PASS, f"no unprotected run or window older than {days:g} days")
    return Outcome(Verdict.FAIL, f"{len(runs)}{'+' if len(runs) >= MAX_EVIDENCE else ''} run(s) "
                   f"and {len(windows)} window(s) older than {days:g} days (bound + slack)",
                   tuple(bad))


@check("retention_protected", "nothing inside a dedupe window or an open dead letter deleted",
       reads=("retention_guard_seconds", "retention_days"), sql_file="retention")
def retention_protected(probe: Probe) -> Outcome:
    guard = float(probe.setting("retention_guard_seconds"))
    letters = probe.rows(query("retention", "dead_letters_without_history"),
                         {"limit": MAX_EVIDENCE})
    orphans = probe.rows(query("retention", "recent_runs_without_window"),
                         {"guard": guard, "limit": MAX_EVIDENCE})
    bad = [{"problem": "open dead letter lost its run history", **r} for r in letters]
    bad += [{"problem": "recent run lost its dispatch window", **r} for r in orphans]
    cutoff = as_datetime(probe.ctx.params.get("pruned_before"))
    if cutoff is not None:
        limit = datetime.now(UTC) - timedelta(days=float(probe.setting("retention_days")))
        if cutoff > limit:
            bad.insert(0, {"problem": "pruner cutoff inside the retention bound",
                           "pruned_before": cutoff, "latest_allowed": limit})
    if not bad:
        return Outcome(Verdict.PASS, "open dead letters keep their history; recent runs keep "
                       "their dispatch windows" + ("; prune cutoff within bound" if cutoff else ""))
    return Outcome(Verdict.FAIL, f"{len(bad)} protected item(s) deleted or at risk, first: "
                   f"{bad[0]['problem']}", tuple(bad))
