"""Shadow read: for a sample of runs, the Redis read path and the database read path give
the same answer (status and attempt of the latest attempt).

The sample is the newest ``shadow_sample`` (a setting) keys of ``jobstatus:index`` (those
written since ``parity_since`` when given). The in-flight rule is the parity check's: a
difference where either side was written within ``parity_grace_seconds`` is counted, not
failed. A run the DB has never heard of is a difference.
"""

from __future__ import annotations

from datetime import UTC, datetime

from checks.base import Outcome, Probe, Verdict, check
from checks.parity import read_redis
from checks.sqlfile import query
from checks.timeparam import as_datetime
from ledger.redis_layout import INDEX_KEY, KEY_PREFIX


@check("shadow_read", "Redis and database read paths answer the same for a sample",
       reads=("shadow_sample", "parity_grace_seconds"), sql_file="parity")
def shadow_read(probe: Probe) -> Outcome:
    sample = int(probe.setting("shadow_sample"))
    grace = float(probe.setting("parity_grace_seconds"))
    since = as_datetime(probe.ctx.params.get("parity_since"))
    low = since.timestamp() if since else "-inf"
    scored = probe.redis.zrevrangebyscore(INDEX_KEY, "+inf", low, start=0, num=sample,
                                          withscores=True)
    read = [e for e in read_redis(probe.redis, scored) if e.status is not None]
    entries = [e for e in read if not e.legacy]  # a legacy key is no run's answer: parity counts it
    legacy = len(read) - len(entries)
    if not entries:
        return Outcome(Verdict.WARN, "no Redis status to compare: nothing written in the window")
    db = {(r["function_name"], r["run_id"]): r for r in probe.rows(
        query("parity", "latest_of_runs"),
        {"functions": [e.function_name for e in entries], "run_ids": [e.run_id for e in entries]})}
    now = datetime.now(UTC)
    diffs, in_flight = [], 0
    for e in entries:
        row = db.get((e.function_name, e.run_id))
        redis_answer = (e.status, e.attempt)
        db_answer = (row["status"], row["attempt"]) if row else (None, None)
        if redis_answer == db_answer:
            continue
        stamps = [t for t in (e.updated_at, row["updated_at"] if row else None) if t]
        if stamps and (now - max(stamps)).total_seconds() < grace:
            in_flight += 1
            continue
        # The key without its prefix: escaped function name and run id, "f:a" for plain names.
        diffs.append({"run": e.key.removeprefix(KEY_PREFIX), "redis_status": e.status,
                      "redis_attempt": e.attempt, "db_status": db_answer[0],
                      "db_attempt": db_answer[1]})
    text = f"{len(entries)} run(s) read through both paths; {in_flight} in flight"
    if legacy:
        text += f"; {legacy} legacy ambiguous key(s) not compared"
    if not diffs:
        return Outcome(Verdict.PASS, f"{text}; same answers")
    return Outcome(Verdict.FAIL, f"{len(diffs)} different answer(s): {text}", tuple(diffs))
