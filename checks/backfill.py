"""Backfill completeness: every finished job up to the bound has its run-ledger row.

Counted per id range (setting ``backfill_range_size``), so a gap shows where it
is and the evidence stays small; for the first incomplete range a sample of the missing
job ids is added. The bound is ``backfill_until_id``, or the one the rollout recorded in
``phasegate_rollout_state.checkpoint``.
"""

from __future__ import annotations

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query
from ledger.redis_layout import SQL_ESCAPE_PARAMS


@check("backfill_complete", "backfill complete for the requested id range",
       reads=("backfill_range_size",), sql_file="backfill")
def backfill_complete(probe: Probe) -> Outcome:
    until = probe.ctx.params.get("backfill_until_id")
    if until is None:
        until = probe.one(query("backfill", "recorded_until_id")).get("until_id")
    if until is None:
        return Outcome(Verdict.FAIL, "no backfill_until_id given and none recorded by the rollout")
    size = int(probe.setting("backfill_range_size"))
    ranges = probe.rows(query("backfill", "backfill_ranges"),
                        {"size": size, "until_id": int(until), **SQL_ESCAPE_PARAMS})
    short = [r for r in ranges if r["runs"] < r["finished_jobs"]]
    jobs = sum(r["finished_jobs"] for r in ranges)
    if not short:
        return Outcome(Verdict.PASS, f"{jobs} finished job(s) up to id {until} in {len(ranges)} "
                       f"range(s) of {size} ids all have their run")
    missing = sum(r["finished_jobs"] - r["runs"] for r in short)
    first = short[0]
    sample = probe.rows(query("backfill", "missing_in_range"),
                        {"lo": first["range_start"], "hi": first["range_end"],
                         "until_id": int(until), "limit": MAX_EVIDENCE // 2, **SQL_ESCAPE_PARAMS})
    evidence = [{"range": f"{r['range_start']}-{r['range_end']}", **r} for r in short]
    evidence = evidence[: MAX_EVIDENCE - len(sample)] + [{"missing_job": s} for s in sample]
    return Outcome(Verdict.FAIL, f"{missing} of {jobs} finished job(s) up to id {until} have no "
                   f"run, in {len(short)} range(s); first range {first['range_start']}-"
                   f"{first['range_end']}", tuple(evidence))
