"""Redis vs database parity over the dual-write window.

Population: Redis keys of ``jobstatus:index`` written since the window start
(``parity_since``, else when ``write_mode`` became ``dual``), and the database's latest
attempt of every run *requested* since then; each side is looked up on the other.

In-flight rule (a pair that is not a mismatch, only counted): the newest write on either
side is younger than ``parity_grace_seconds`` (default 30), or the Redis write is within
that grace of the window start (the flag was still propagating). Beyond the grace, a run
missing on one side, a different attempt (``run_key``) or a different status is a mismatch.
DB rows older than the Redis TTL are not expected in Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query
from checks.timeparam import as_datetime
from ledger.redis_layout import INDEX_KEY, KEY_PREFIX, STATUS_TTL_SECONDS, status_key

BATCH = 500


@dataclass(frozen=True)
class RedisStatus:
    key: str
    function_name: str
    run_id: str
    status: str | None
    attempt: int | None
    run_key: str | None
    updated_at: datetime | None
    score: float


def split_key(key: str) -> tuple[str, str]:
    """``jobstatus:{function}:{run_id}`` -> (function, run_id); function names hold no ':'."""
    rest = key[len(KEY_PREFIX):]
    function_name, _, run_id = rest.partition(":")
    return function_name, run_id


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def read_redis(client: Any, keys_scores: Iterable[tuple[str, float]]) -> list[RedisStatus]:
    """HGETALL every key (pipelined, in batches); a key whose hash expired has no status."""
    out: list[RedisStatus] = []
    for chunk in _chunks(list(keys_scores)):
        pipe = client.pipeline(transaction=False)
        for key, _ in chunk:
            pipe.hgetall(key)
        for (key, score), h in zip(chunk, pipe.execute(), strict=True):
            fn, run_id = split_key(key)
            attempt = h.get("attempt")
            out.append(RedisStatus(
                key, fn, run_id, h.get("status"), int(attempt) if attempt else None,
                h.get("run_key"), as_datetime(h.get("updated_at")), float(score)))
    return out


def window_start(probe: Probe) -> datetime | None:
    since = as_datetime(probe.ctx.params.get("parity_since"))
    if since is None:
        since = probe.one(query("parity", "dual_since")).get("updated_at")
    return since


def _young(ts: datetime | None, now: datetime, grace: float) -> bool:
    return ts is not None and (now - ts).total_seconds() < grace


def _redis_to_db(probe: Probe, entries: list[RedisStatus], since: datetime, now: datetime,
                 grace: float) -> tuple[list[dict], int]:
    mismatches, in_flight = [], 0
    for chunk in _chunks(entries):
        keys = [e.run_key for e in chunk if e.run_key]
        db = {r["run_key"]: r for r in probe.rows(query("parity", "runs_by_key"), {"keys": keys})}
        for e in chunk:
            row = db.get(e.run_key or "")
            problem = None
            if e.status is None:
                continue  # expired between ZRANGE and HGETALL: nothing to compare
            if row is None:
                problem = "missing in db"
            elif row["status"] != e.status:
                problem = "status differs"
            if problem is None:
                continue
            started = datetime.fromtimestamp(e.score, UTC)
            newest = max(t for t in (e.updated_at, row["updated_at"] if row else None, started) if t)
            if _young(newest, now, grace) or (started - since).total_seconds() < grace:
                in_flight += 1
                continue
            mismatches.append({"problem": problem, "run_key": e.run_key, "redis_status": e.status,
                               "db_status": row["status"] if row else None})
    return mismatches, in_flight


def _db_to_redis(probe: Probe, rows: list[dict], now: datetime, grace: float) -> tuple[list[dict], int]:
    mismatches, in_flight = [], 0
    ttl_edge = now - timedelta(seconds=STATUS_TTL_SECONDS)
    for chunk in _chunks(rows):
        pipe = probe.redis.pipeline(transaction=False)
        for r in chunk:
            pipe.hgetall(status_key(r["function_name"], r["run_id"]))
        for r, h in zip(chunk, pipe.execute(), strict=True):
            if r["updated_at"] < ttl_edge:
                continue
            if not h:
                problem = "missing in redis"
            elif h.get("run_key") != r["run_key"]:
                problem = "attempt differs"
            elif h.get("status") != r["status"]:
                problem = "status differs"
            else:
                continue
            if _young(r["updated_at"], now, grace) or _young(as_datetime(h.get("updated_at")), now, grace):
                in_flight += 1
                continue
            mismatches.append({"problem": problem, "run_key": r["run_key"], "db_status": r["status"],
                               "redis_status": h.get("status"), "redis_run_key": h.get("run_key")})
    return mismatches, in_flight


@check("parity", "Redis and database agree on every run of the dual-write window",
       phases=("dual_write", "cutover"), sql_file="parity")
def parity(probe: Probe) -> Outcome:
    since = window_start(probe)
    if since is None:
        return Outcome(Verdict.FAIL, "no parity_since given and write_mode is not dual: "
                       "no dual-write window to compare")
    grace = float(probe.ctx.param("parity_grace_seconds", 30))
    limit = int(probe.ctx.param("parity_max_runs", 50_000))
    now = datetime.now(UTC)
    scored = probe.redis.zrevrangebyscore(INDEX_KEY, "+inf", since.timestamp(), start=0,
                                          num=limit, withscores=True)
    entries = read_redis(probe.redis, scored)
    db_rows = probe.rows(query("parity", "latest_since"), {"since": since, "limit": limit})
    a, fly_a = _redis_to_db(probe, entries, since, now, grace)
    b, fly_b = _db_to_redis(probe, db_rows, now, grace)
    # A pair seen from both sides is one mismatch, reported once.
    mismatches = list({m["run_key"]: m for m in reversed(a + b)}.values())[::-1]
    text = (f"{len(entries)} Redis status(es) and {len(db_rows)} DB run(s) since "
            f"{since.isoformat()}; {fly_a + fly_b} in flight (younger than {grace:g}s)")
    if len(entries) >= limit or len(db_rows) >= limit:
        text += f"; newest {limit} compared"
    if not mismatches:
        return Outcome(Verdict.PASS, f"{text}; no mismatch")
    return Outcome(Verdict.FAIL, f"{len(mismatches)} mismatch(es): {text}",
                   tuple(mismatches[:MAX_EVIDENCE]))
