"""Liveness: nothing RUNNING past its lease; dead letters not piling up."""

from __future__ import annotations

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query


@check("liveness_leases", "no run or job RUNNING past its lease",
       reads=("lease_seconds",), severity="major", sql_file="liveness")
def leases(probe: Probe) -> Outcome:
    lease = float(probe.setting("lease_seconds"))
    args = {"lease": lease, "limit": MAX_EVIDENCE}
    runs = probe.rows(query("liveness", "runs_past_lease"), args)
    jobs = probe.rows(query("liveness", "jobs_past_lease"), args)
    bad = [{"kind": "run", **r} for r in runs] + [{"kind": "job", **r} for r in jobs]
    if not bad:
        return Outcome(Verdict.PASS, f"nothing RUNNING past its {lease:g}s lease")
    return Outcome(Verdict.FAIL, f"{len(runs)} run(s) and {len(jobs)} job(s) RUNNING past their "
                   f"{lease:g}s lease (samples)", tuple(bad))


@check("liveness_dead_letters", "dead letters are not piling up",
       reads=("dlq_window_seconds", "dlq_max_new", "dlq_warn_min"), severity="major",
       sql_file="liveness")
def dead_letter_growth(probe: Probe) -> Outcome:
    """FAIL above ``dlq_max_new`` new OPEN letters per window; WARN when the count more than
    doubled against the previous window (and is at least ``dlq_warn_min``)."""
    window = float(probe.setting("dlq_window_seconds"))
    max_new = int(probe.setting("dlq_max_new"))
    warn_min = int(probe.setting("dlq_warn_min"))
    rows = probe.rows(query("liveness", "dead_letter_growth"), {"window": window})
    recent = sum(r["recent"] for r in rows)
    previous = sum(r["previous"] for r in rows)
    text = f"{recent} new OPEN dead letter(s) in the last {window:g}s (previous window: {previous})"
    if recent > max_new:
        return Outcome(Verdict.FAIL, f"{text}; more than {max_new}", tuple(rows))
    if recent >= warn_min and recent > 2 * previous:
        return Outcome(Verdict.WARN, f"{text}; more than doubled", tuple(rows))
    return Outcome(Verdict.PASS, text, tuple(rows))
