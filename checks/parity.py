"""Redis vs database parity over the dual-write window.

Population: Redis keys of ``jobstatus:index`` written since the window start
(``parity_since``, else when ``write_mode`` became ``dual``), and the database's latest
attempt of every run *requested* since then; each side is looked up on the other.

In-flight rule (a pair that is not a mismatch, only counted): the newest write on either
side is younger than the setting ``parity_grace_seconds``, or the Redis write is within
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

BATCH = 2000


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


FIELDS = ("status", "attempt", "run_key", "updated_at")


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def fetch_hashes(client: Any, keys: Iterable[str]) -> dict[str, dict[str, str]]:
    """The status fields of every key (pipelined HMGET, in batches); {} for an expired key."""
    out: dict[str, dict[str, str]] = {}
    for chunk in _chunks(list(keys)):
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.hmget(key, FIELDS)
        for key, values in zip(chunk, pipe.execute(), strict=True):
            out[key] = {f: v for f, v in zip(FIELDS, values, strict=True) if v is not None}
    return out


def read_redis(client: Any, keys_scores: Iterable[tuple[str, float]]) -> list[RedisStatus]:
    """The Redis read path for the given index entries."""
    pairs = list(keys_scores)
    hashes = fetch_hashes(client, [k for k, _ in pairs])
    out = []
    for key, score in pairs:
        h = hashes.get(key, {})
        fn, run_id = split_key(key)
        attempt = h.get("attempt")
        out.append(RedisStatus(key, fn, run_id, h.get("status"), int(attempt) if attempt else None,
                               h.get("run_key"), as_datetime(h.get("updated_at")), float(score)))
    return out


def window_start(probe: Probe) -> datetime | None:
    since = as_datetime(probe.ctx.params.get("parity_since"))
    if since is None:
        since = probe.one(query("parity", "dual_since")).get("updated_at")
    return since


@dataclass(frozen=True)
class _Rule:
    """The in-flight rule: which differences are too young to call a mismatch."""

    since: datetime
    now: datetime
    grace: float

    def in_flight(self, *stamps: datetime | str | None, redis_score: float | None = None) -> bool:
        times = [as_datetime(t) for t in stamps if t]
        newest = max((t for t in times if t), default=None)
        if newest is not None and (self.now - newest).total_seconds() < self.grace:
            return True
        if redis_score is not None:
            written = datetime.fromtimestamp(redis_score, UTC)
            return (self.now - written).total_seconds() < self.grace \
                or (written - self.since).total_seconds() < self.grace
        return False


def compare(scored: list[tuple[str, float]], hashes: dict[str, dict[str, str]],
            db_by_key: dict[str, dict], db_latest: list[dict], rule: _Rule) -> tuple[list[dict], int]:
    """Mismatches (each run once) and the in-flight count, both directions."""
    found: dict[str, dict] = {}
    in_flight = 0
    for key, score in scored:  # Redis -> DB
        h = hashes.get(key) or {}
        if "status" not in h:
            continue  # expired between ZRANGE and HMGET: nothing to compare
        row = db_by_key.get(h.get("run_key", ""))
        if row is not None and row["status"] == h["status"]:
            continue
        if rule.in_flight(h.get("updated_at"), row["updated_at"] if row else None, redis_score=score):
            in_flight += 1
            continue
        found.setdefault(h.get("run_key", key), {
            "problem": "missing in db" if row is None else "status differs",
            "run_key": h.get("run_key"), "redis_status": h["status"],
            "db_status": row["status"] if row else None})
    ttl_edge = rule.now - timedelta(seconds=STATUS_TTL_SECONDS)
    for r in db_latest:  # DB -> Redis
        h = hashes.get(status_key(r["function_name"], r["run_id"])) or {}
        if r["updated_at"] < ttl_edge or r["run_key"] in found:
            continue
        if not h:
            problem = "missing in redis"
        elif h.get("run_key") != r["run_key"]:
            problem = "attempt differs"
        elif h.get("status") != r["status"]:
            problem = "status differs"
        else:
            continue
        if rule.in_flight(r["updated_at"], h.get("updated_at")):
            in_flight += 1
            continue
        found[r["run_key"]] = {"problem": problem, "run_key": r["run_key"], "db_status": r["status"],
                               "redis_status": h.get("status"), "redis_run_key": h.get("run_key")}
    return list(found.values()), in_flight


@check("parity", "Redis and database agree on every run of the dual-write window",
       reads=("parity_grace_seconds", "parity_max_runs"), sql_file="parity")
def parity(probe: Probe) -> Outcome:
    since = window_start(probe)
    if since is None:
        return Outcome(Verdict.FAIL, "no parity_since given and write_mode is not dual: "
                       "no dual-write window to compare")
    rule = _Rule(since, datetime.now(UTC), float(probe.setting("parity_grace_seconds")))
    limit = int(probe.setting("parity_max_runs"))
    scored = probe.redis.zrevrangebyscore(INDEX_KEY, "+inf", since.timestamp(), start=0,
                                          num=limit, withscores=True)
    db_latest = probe.rows(query("parity", "latest_since"), {"since": since, "limit": limit})
    # One HMGET per key of either side; one query for the run keys the window did not bring.
    keys = dict.fromkeys([k for k, _ in scored] +
                         [status_key(r["function_name"], r["run_id"]) for r in db_latest])
    hashes = fetch_hashes(probe.redis, keys)
    db_by_key = {r["run_key"]: r for r in db_latest}
    missing = [h["run_key"] for h in hashes.values() if h.get("run_key") and h["run_key"] not in db_by_key]
    for chunk in _chunks(missing, 5000):
        db_by_key.update({r["run_key"]: r for r in probe.rows(query("parity", "runs_by_key"),
                                                               {"keys": chunk})})
    mismatches, in_flight = compare(scored, hashes, db_by_key, db_latest, rule)
    text = (f"{len(scored)} Redis status(es) and {len(db_latest)} DB run(s) since "
            f"{since.isoformat()}; {in_flight} in flight (younger than {rule.grace:g}s)")
    if len(scored) >= limit or len(db_latest) >= limit:
        text += f"; newest {limit} compared"
    if not mismatches:
        return Outcome(Verdict.PASS, f"{text}; no mismatch")
    return Outcome(Verdict.FAIL, f"{len(mismatches)} mismatch(es): {text}",
                   tuple(mismatches[:MAX_EVIDENCE]))
