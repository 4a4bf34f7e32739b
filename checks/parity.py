"""Redis vs database parity over the dual-write window.

Population: Redis keys of ``jobstatus:index`` written since the window start
(``parity_since``, else when ``write_mode`` became ``dual``), and the database's latest
attempt of every run *requested* since then; each side is looked up on the other.

In-flight rule (a pair that is not a mismatch, only counted): the newest write on either
side is younger than the setting ``parity_grace_seconds``, or the Redis write is within
that grace of the window start (the flag was still propagating). Beyond the grace, a run
missing on one side, a different attempt or a different status is a mismatch. DB rows
older than the Redis TTL are not expected in Redis.

A run is matched by ``(function_name, run_id, attempt)``: a Redis key is decoded to its run
(``ledger.redis_layout``), a DB row gives its columns, and a row still under a pre-encoding
run key is that run's all the same. A *legacy ambiguous key* (a hash written before run keys
were escaped, for a name with ``:`` or ``%``: its key may be two runs', or another run's
escaped key) cannot be attributed, so it is neither compared nor silently dropped: parity
counts it and WARNs (``invoke reconcile`` moves such hashes to their runs' keys). A DB run
whose status is only under its legacy key counts there too, not as "missing in redis".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from checks.base import MAX_EVIDENCE, Outcome, Probe, Verdict, check
from checks.sqlfile import query
from checks.timeparam import as_datetime
from ledger.redis_layout import (
    INDEX_KEY,
    KEY_ENCODING_FIELD,
    STATUS_TTL_SECONDS,
    is_escaped,
    is_legacy_hash,
    legacy_status_key,
    parse_status_key,
    status_key,
)

BATCH = 2000
LEGACY = "legacy ambiguous key"

Run = tuple[str, str, int]  # (function_name, run_id, attempt): how a run is looked up


@dataclass(frozen=True)
class RedisStatus:
    key: str
    function_name: str | None  # None (and run_id None): a legacy key, whose run cannot be told
    run_id: str | None
    status: str | None
    attempt: int | None
    run_key: str | None
    updated_at: datetime | None
    score: float

    @property
    def legacy(self) -> bool:
        """Written under a pre-encoding key (ledger.redis_layout): whose it is is unknown."""
        return self.function_name is None

    @property
    def run(self) -> Run | None:
        if self.function_name is None or self.run_id is None or self.attempt is None:
            return None
        return self.function_name, self.run_id, self.attempt


FIELDS = ("status", "attempt", "run_key", "updated_at", KEY_ENCODING_FIELD)


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
    """The Redis read path for the given index entries: each key decoded to its run, except
    a legacy hash (never read as a run's: it may be two runs' or another run's)."""
    pairs = list(keys_scores)
    hashes = fetch_hashes(client, [k for k, _ in pairs])
    return [_entry(key, score, hashes.get(key, {})) for key, score in pairs]


def _entry(key: str, score: float, h: dict[str, str]) -> RedisStatus:
    names = None if is_legacy_hash(key, h) else parse_status_key(key)
    fn, run_id = names if names else (None, None)
    attempt = h.get("attempt")
    return RedisStatus(key, fn, run_id, h.get("status"), int(attempt) if attempt else None,
                       h.get("run_key"), as_datetime(h.get("updated_at")), float(score))


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


def _own_hash(key: str, hashes: dict[str, dict[str, str]]) -> dict[str, str]:
    """The hash at a run's key, or {} when there is none or it is another run's legacy hash."""
    h = hashes.get(key) or {}
    return {} if is_legacy_hash(key, h) else h


def compare(entries: list[RedisStatus], hashes: dict[str, dict[str, str]],
            db_by_run: dict[Run, dict], db_latest: list[dict],
            rule: _Rule) -> tuple[list[dict], int, set[str]]:
    """Mismatches (each run once), the in-flight count and the legacy keys, both directions.
    Runs are matched by (function_name, run_id, attempt), never by run_key: a row written
    under a pre-encoding key is still that run's."""
    found: dict[Run, dict] = {}
    legacy: set[str] = set()
    in_flight = 0
    for e in entries:  # Redis -> DB
        if e.status is None:
            continue  # expired between ZRANGE and HMGET: nothing to compare
        if e.legacy:
            legacy.add(e.key)
            continue
        row = db_by_run.get(e.run) if e.run else None
        if row is not None and row["status"] == e.status:
            continue
        if rule.in_flight(e.updated_at, row["updated_at"] if row else None, redis_score=e.score):
            in_flight += 1
            continue
        found.setdefault(e.run or (e.key, "", 0), {
            "problem": "missing in db" if row is None else "status differs",
            "run_key": e.run_key, "redis_status": e.status,
            "db_status": row["status"] if row else None})
    ttl_edge = rule.now - timedelta(seconds=STATUS_TTL_SECONDS)
    for r in db_latest:  # DB -> Redis
        run = (r["function_name"], r["run_id"], r["attempt"])
        if r["updated_at"] < ttl_edge or run in found:
            continue
        key = status_key(r["function_name"], r["run_id"])
        h = _own_hash(key, hashes)
        if hashes.get(key) and not h:
            legacy.add(key)  # another run's legacy hash sits at this run's key
        old = legacy_status_key(r["function_name"], r["run_id"])
        if not h and old != key and hashes.get(old) and is_legacy_hash(old, hashes[old]):
            legacy.add(old)  # this run's status is (at best) under its legacy key
            continue
        if not h:
            problem = "missing in redis"
        elif h.get("attempt") != str(r["attempt"]):
            problem = "attempt differs"
        elif h.get("status") != r["status"]:
            problem = "status differs"
        else:
            continue
        if rule.in_flight(r["updated_at"], h.get("updated_at")):
            in_flight += 1
            continue
        found[run] = {"problem": problem, "run_key": r["run_key"], "db_status": r["status"],
                      "redis_status": h.get("status"), "redis_run_key": h.get("run_key")}
    return list(found.values()), in_flight, legacy


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
    # One HMGET per key of either side (an escaped run's legacy key too); one query for the
    # attempts the window did not bring.
    keys = dict.fromkeys([k for k, _ in scored] + [
        k for r in db_latest for k in _keys_of(r["function_name"], r["run_id"])])
    hashes = fetch_hashes(probe.redis, keys)
    entries = [_entry(key, score, hashes.get(key, {})) for key, score in scored]
    db_by_run = {(r["function_name"], r["run_id"], r["attempt"]): r for r in db_latest}
    missing = list(dict.fromkeys(e.run for e in entries if e.run and e.run not in db_by_run))
    for chunk in _chunks(missing, 5000):
        db_by_run.update({(r["function_name"], r["run_id"], r["attempt"]): r for r in probe.rows(
            query("parity", "runs_by_attempt"), {"functions": [m[0] for m in chunk],
                                                  "run_ids": [m[1] for m in chunk],
                                                  "attempts": [m[2] for m in chunk]})})
    mismatches, in_flight, legacy = compare(entries, hashes, db_by_run, db_latest, rule)
    text = (f"{len(scored)} Redis status(es) and {len(db_latest)} DB run(s) since "
            f"{since.isoformat()}; {in_flight} in flight (younger than {rule.grace:g}s)")
    if len(scored) >= limit or len(db_latest) >= limit:
        text += f"; newest {limit} compared"
    if legacy:
        text += (f"; {len(legacy)} {LEGACY}(s) (status written before run keys were escaped; "
                 "whose run it is cannot be told: `invoke reconcile` moves them)")
    evidence = [{"problem": LEGACY, "key": k} for k in sorted(legacy)]
    if mismatches:
        return Outcome(Verdict.FAIL, f"{len(mismatches)} mismatch(es): {text}",
                       tuple((mismatches + evidence)[:MAX_EVIDENCE]))
    if legacy:
        return Outcome(Verdict.WARN, f"no mismatch, but {text}", tuple(evidence[:MAX_EVIDENCE]))
    return Outcome(Verdict.PASS, f"{text}; no mismatch")


def _keys_of(function_name: str, run_id: str) -> list[str]:
    """The status key of a run, and its legacy key when escaping changed it."""
    key = status_key(function_name, run_id)
    if not is_escaped(function_name, run_id):
        return [key]
    return [key, legacy_status_key(function_name, run_id)]
