"""Job status: the legacy Redis hash and/or the run ledger, as the flags say, per call.

=============  ===========================  ==========================================
write_mode     writes                       a failure of ...
=============  ===========================  ==========================================
redis_only     Redis hash only              Redis fails the call (it is the only copy)
dual           run ledger, then Redis       the database fails the call; Redis is best
                                            effort: counted, logged, repaired by
                                            :meth:`JobStatusStore.reconcile`
db_only        run ledger only              the database fails the call
=============  ===========================  ==========================================

Reads follow ``read_source`` (``redis`` reads the hash, ``db`` the run ledger), except that
the database is only read while it is written, and Redis is not read once it is no longer
written (``db_only``), so no flag combination can read a stale store.

Redis writes use the layout of :mod:`ledger.redis_layout` and go in one command (a Lua
script, so one round trip for one run or a batch): ``HSET`` the run's hash, ``EXPIRE`` it,
``ZADD`` it to ``jobstatus:index``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis as redis_lib

from ledger.db import Database
from ledger.errors import LedgerWriteFailed
from ledger.flags import Modes
from ledger.models import ErrorClass, FunctionRunStatus
from ledger.modes import Counters, ModeSource
from ledger.redis_layout import (
    INDEX_KEY,
    KEY_ENCODING,
    KEY_ENCODING_FIELD,
    STATUS_TTL_SECONDS,
    is_escaped,
    is_legacy_hash,
    legacy_owners,
    legacy_status_key,
    parse_status_key,
    status_key,
)
from ledger.redis_layout import run_key as make_run_key
from ledger.runs import RunLedger, RunRecord, RunStart

log = logging.getLogger("phasegate.ledger.status")

RUNNING = FunctionRunStatus.RUNNING.value
SUCCEEDED = FunctionRunStatus.SUCCEEDED.value
FAILED = FunctionRunStatus.FAILED.value
# KEYS: the index, then one status hash per run. ARGV: ttl, now, the key-encoding field,
# then per run: '1' when its names are escaped, the number of fields, field/value pairs. An
# escaped run's key may hold another run's legacy hash (no key-encoding field, see
# ledger.redis_layout): it is dropped, never merged into. redis-py reloads the script after
# a Redis restart.
WRITE_STATUS_LUA = """
local ttl, now, marker, pos = tonumber(ARGV[1]), ARGV[2], ARGV[3], 4
for i = 2, #KEYS do
  local escaped, n = ARGV[pos], tonumber(ARGV[pos + 1])
  if escaped == '1' and redis.call('HEXISTS', KEYS[i], marker) == 0 then
    redis.call('DEL', KEYS[i])
  end
  redis.call('HSET', KEYS[i], unpack(ARGV, pos + 2, pos + 1 + 2 * n))
  pos = pos + 2 * n + 2
  redis.call('EXPIRE', KEYS[i], ttl)
  redis.call('ZADD', KEYS[1], now, KEYS[i])
end
return #KEYS - 1
"""
# The fields reconcile compares: what a reader of the hash acts on (the key encoding says
# whether the hash at an escaped run's key is that run's at all).
COMPARED_FIELDS = ("status", "attempt", "run_key", "error_class", KEY_ENCODING_FIELD)


@dataclass(frozen=True)
class RunStatus:
    """The status of a function run's latest attempt, from whichever store was read."""

    function_name: str
    run_id: str
    attempt: int
    status: str
    run_key: str
    source: str  # redis | db
    updated_at: str | None = None
    correlation_id: str | None = None
    dispatch_key: str | None = None
    error_class: str | None = None
    error: str | None = None

    @classmethod
    def from_record(cls, r: RunRecord) -> RunStatus:
        return cls(r.function_name, r.run_id, r.attempt, r.status, r.run_key, "db",
                   _iso(r.updated_at), r.correlation_id, r.dispatch_key, r.error_class,
                   r.terminal_error)

    @classmethod
    def from_hash(cls, function_name: str, run_id: str, h: Mapping[str, str]) -> RunStatus:
        return cls(function_name, run_id, int(h.get("attempt", "1")), h.get("status", ""),
                   h.get("run_key", ""), "redis", h.get("updated_at"), h.get("correlation_id"),
                   h.get("dispatch_key"), h.get("error_class"), h.get("error"))

    @property
    def escaped(self) -> bool:
        """True when the run's names hold ':' or '%' (its keys differ from its legacy keys)."""
        return is_escaped(self.function_name, self.run_id)

    def to_hash(self) -> dict[str, str]:
        """The Redis hash fields (empty values left out, as the legacy writer did; the key
        encoding only on an escaped run's hash, so every other hash is as it always was)."""
        fields = {"status": self.status, "attempt": str(self.attempt), "run_key": self.run_key,
                  "updated_at": self.updated_at or _iso(datetime.now(UTC)),
                  "correlation_id": self.correlation_id, "dispatch_key": self.dispatch_key,
                  "error_class": self.error_class, "error": self.error,
                  KEY_ENCODING_FIELD: KEY_ENCODING if self.escaped else None}
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class StatusEvent:
    """One status write for :meth:`JobStatusStore.record_many` (a start, success or failure)."""

    function_name: str
    run_id: str
    attempt: int = 1
    status: str = RUNNING
    correlation_id: str | None = None
    dispatch_key: str | None = None
    job_id: int | None = None
    error_class: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`JobStatusStore.reconcile` found and repaired."""

    since: datetime
    until: datetime
    checked: int = 0
    repaired: int = 0
    legacy_moved: int = 0  # hashes under a pre-encoding key replaced by their runs' own
    skipped_reason: str | None = None
    repaired_keys: tuple[str, ...] = field(default=(), repr=False)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


class JobStatusStore:
    """Writes and reads function-run status following ``write_mode``/``read_source``."""

    def __init__(self, db: Database, redis: redis_lib.Redis, modes: ModeSource,
                 runs: RunLedger | None = None, *, ttl: int = STATUS_TTL_SECONDS,
                 counters: Counters | None = None) -> None:
        self.db, self.redis, self.modes = db, redis, modes
        self.runs = runs or RunLedger(db)
        self.ttl = ttl
        self.counters = counters or Counters()
        self._write_script = redis.register_script(WRITE_STATUS_LUA)

    @property
    def redis_failures(self) -> int:
        """Redis writes that failed in dual mode (each is repaired by ``reconcile``)."""
        return self.counters.get("redis_write_failures")

    # ------------------------------------------------------------------ writes

    def start(self, function_name: str, run_id: str, attempt: int = 1, *,
              dispatch_key: str | None = None, correlation_id: str | None = None,
              job_id: int | None = None) -> RunStatus:
        """Attempt ``attempt`` is RUNNING (a repeated start returns the same record)."""
        modes = self.modes.modes()
        key = make_run_key(function_name, run_id, attempt)
        if modes.writes_db:
            rec = self._db("start", key, lambda: self.runs.start(
                function_name, run_id, attempt, dispatch_key=dispatch_key,
                correlation_id=correlation_id, job_id=job_id))
            st = RunStatus.from_record(rec)
        else:
            st = RunStatus(function_name, run_id, attempt, RUNNING, key, "redis",
                           _iso(datetime.now(UTC)), correlation_id, dispatch_key)
        self._redis_write(modes, [st])
        return st

    def succeed(self, function_name: str, run_id: str, attempt: int = 1) -> RunStatus:
        return self._finish(function_name, run_id, attempt, SUCCEEDED, None, None)

    def fail(self, function_name: str, run_id: str, attempt: int,
             error_class: ErrorClass | str, error: str) -> RunStatus:
        return self._finish(function_name, run_id, attempt, FAILED,
                            ErrorClass(error_class).value, error)

    def _finish(self, function_name: str, run_id: str, attempt: int, status: str,
                error_class: str | None, error: str | None) -> RunStatus:
        modes = self.modes.modes()
        key = make_run_key(function_name, run_id, attempt)
        if modes.writes_db:
            if status == SUCCEEDED:
                rec = self._db("succeed", key, lambda: self.runs.succeed(key))
            else:
                rec = self._db("fail", key, lambda: self.runs.fail(key, error_class or "", error or ""))
            st = RunStatus.from_record(rec)
        else:
            st = RunStatus(function_name, run_id, attempt, status, key, "redis",
                           _iso(datetime.now(UTC)), error_class=error_class, error=error)
        self._redis_write(modes, [st])
        return st

    def record_many(self, events: Sequence[StatusEvent]) -> list[RunStatus]:
        """Batched starts: one multi-row statement plus one Redis pipeline.

        Only RUNNING events are batched through the database (finishing is a guarded
        per-row UPDATE); other events are written one by one."""
        starts = [e for e in events if e.status == RUNNING]
        rest = [e for e in events if e.status != RUNNING]
        modes = self.modes.modes()
        out: list[RunStatus] = []
        if starts and modes.writes_db:
            batch = [RunStart(e.function_name, e.run_id, e.attempt, e.dispatch_key,
                              e.correlation_id, e.job_id) for e in starts]
            recs = self._db("start_many", f"{len(batch)} runs",
                            lambda: self.runs.start_many(batch))
            out = [RunStatus.from_record(r) for r in recs]
        elif starts:
            now = _iso(datetime.now(UTC))
            out = [RunStatus(e.function_name, e.run_id, e.attempt, RUNNING,
                             make_run_key(e.function_name, e.run_id, e.attempt), "redis", now,
                             e.correlation_id, e.dispatch_key) for e in starts]
        self._redis_write(modes, out)
        for e in rest:
            out.append(self._finish(e.function_name, e.run_id, e.attempt, e.status,
                                    e.error_class, e.error))
        return out

    def _db(self, what: str, key: str, fn: Any) -> Any:
        """Run a database write; failures fail the call (the database is authoritative)."""
        try:
            return fn()
        except psycopg.Error as exc:
            raise LedgerWriteFailed(f"run {what}", key, exc) from exc

    def _redis_write(self, modes: Modes, statuses: Sequence[RunStatus]) -> None:
        if not modes.writes_redis or not statuses:
            return
        try:
            self.write_hashes(statuses)
        except redis_lib.RedisError as exc:
            if not modes.writes_db:
                # redis_only: Redis is the only copy, so this call failed.
                raise LedgerWriteFailed("status", statuses[0].run_key, exc, store="redis") from exc
            self.counters.incr("redis_write_failures", len(statuses))
            log.warning("status of %d run(s) (first %s) not written to Redis: %s; the database "
                        "has them and reconcile() will repair Redis", len(statuses),
                        statuses[0].run_key, type(exc).__name__,
                        extra={"run_key": statuses[0].run_key})

    def write_hashes(self, statuses: Sequence[RunStatus]) -> None:
        """HSET + EXPIRE + ZADD for every status, as ONE Redis command (a Lua script).

        One command instead of three per run: measured, packing and parsing 3N pipelined
        commands in redis-py cost more than the writes themselves."""
        keys: list[str] = [INDEX_KEY]
        args: list[str | int | float] = [self.ttl, datetime.now(UTC).timestamp(),
                                         KEY_ENCODING_FIELD]
        for st in statuses:
            keys.append(status_key(st.function_name, st.run_id))
            fields = st.to_hash()
            args += ("1" if st.escaped else "0", len(fields))
            for name, value in fields.items():
                args += (name, value)
        self._write_script(keys=keys, args=args)

    # ------------------------------------------------------------------ reads

    def read(self, function_name: str, run_id: str) -> RunStatus | None:
        """The run's latest status from the store ``read_source`` names (see module doc)."""
        modes = self.modes.modes()
        if _reads_db(modes):
            rec = self.runs.latest(function_name, run_id)
            return None if rec is None else RunStatus.from_record(rec)
        key = status_key(function_name, run_id)
        fields = _decode(self.redis.hgetall(key))
        if not fields or is_legacy_hash(key, fields):
            # A legacy hash at an escaped run's key is another run's (ledger.redis_layout); a
            # legacy key is never read: it may be two runs' (the ledger README, "Run keys").
            return None
        return RunStatus.from_hash(function_name, run_id, fields)

    # ------------------------------------------------------------------ repair

    def reconcile(self, since: datetime | timedelta, until: datetime | None = None,
                  batch: int = 500) -> ReconcileReport:
        """Make Redis agree with the run ledger for runs requested in [since, until).

        Only in ``dual``: in ``redis_only`` the database is not the truth, and in
        ``db_only`` Redis is being retired (rewriting keys would undo the contract)."""
        until = until or datetime.now(UTC)
        start = until - since if isinstance(since, timedelta) else since
        modes = self.modes.modes()
        if not (modes.writes_db and modes.writes_redis):
            return ReconcileReport(start, until, skipped_reason=f"write_mode={modes.write_mode}")
        checked, repaired, moved = 0, [], 0
        for records in self.runs.latest_in_range(start, until, batch):
            statuses = [RunStatus.from_record(r) for r in records]
            stale = self._stale(statuses)
            if stale:
                self.write_hashes(stale)
            checked += len(statuses)
            repaired += [s.run_key for s in stale]
            moved += self._move_legacy([s for s in statuses if s.escaped])
        # Entries older than the hashes' TTL point at expired keys: keep the index bounded.
        self.redis.zremrangebyscore(INDEX_KEY, "-inf", datetime.now(UTC).timestamp() - self.ttl)
        if repaired or moved:
            log.info("reconcile repaired %d of %d runs in Redis; moved %d legacy hash(es)",
                     len(repaired), checked, moved)
        return ReconcileReport(start, until, checked, len(repaired), moved,
                               repaired_keys=tuple(repaired))

    def _stale(self, statuses: Sequence[RunStatus]) -> list[RunStatus]:
        pipe = self.redis.pipeline(transaction=False)
        for st in statuses:
            pipe.hgetall(status_key(st.function_name, st.run_id))
        current = pipe.execute()
        stale = []
        for st, raw in zip(statuses, current, strict=True):
            want = st.to_hash()
            have = _decode(raw or {})
            if any(have.get(f) != want.get(f) for f in COMPARED_FIELDS):
                stale.append(st)
        return stale

    def _move_legacy(self, statuses: Sequence[RunStatus]) -> int:
        """Replace the legacy hashes of these escaped runs by their runs' own hashes.

        The pre-encoding code wrote an escaped run's status under its legacy key, which may
        be several runs' (every split at a ':') or another run's escaped key: the legacy
        hash and its index entry go, and each run that could own it, or has it as its key,
        and is in the run ledger gets its hash rewritten from the ledger (the truth in
        dual). Legacy hashes of runs the ledger does not have are not reached from here:
        they expire with their TTL, and parity counts them meanwhile."""
        legacy = list(dict.fromkeys(legacy_status_key(s.function_name, s.run_id) for s in statuses))
        if not legacy:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for key in legacy:
            pipe.hgetall(key)
        found = [k for k, raw in zip(legacy, pipe.execute(), strict=True)
                 if raw and is_legacy_hash(k, _decode(raw))]
        if not found:
            return 0
        runs = {k: legacy_owners(k) + [p for p in [parse_status_key(k)] if p] for k in found}
        records = self.runs.latest_of(r for rs in runs.values() for r in rs)
        rewrite = {r: RunStatus.from_record(records[r]) for rs in runs.values() for r in rs
                   if r in records}
        pipe = self.redis.pipeline(transaction=False)
        for key in found:
            pipe.delete(key)
            pipe.zrem(INDEX_KEY, key)
        pipe.execute()
        self.write_hashes(list(rewrite.values()))
        return len(found)


def _reads_db(modes: Modes) -> bool:
    return (modes.reads_db and modes.writes_db) or modes.write_mode == "db_only"


def _decode(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()}
