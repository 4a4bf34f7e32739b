"""The dispatch ledger: at most one send per (source, time window), however many senders.

``register`` derives ``dispatch_key`` from the source and the window ``at`` falls in, then
(in ``dual``/``db_only``) runs ONE statement, ``INSERT ... ON CONFLICT (dispatch_key) DO
NOTHING``: the unique index decides the race and the row count tells the single winner
from the duplicates, who read the existing row back and send nothing. In
``redis_only`` (before the tables may exist) dedupe is the legacy ``SET key NX EX window``.

Status moves only DISPATCHING -> ENQUEUED | ENQUEUE_FAILED | INLINE_EMERGENCY: the UPDATE
says ``WHERE status = 'DISPATCHING'``, so an illegal move changes nothing and raises
:class:`IllegalDispatchTransition`. A sender that died in DISPATCHING leaves a row that
:meth:`DispatchLedger.stuck` lists and :meth:`DispatchLedger.recover` takes over.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
import redis as redis_lib
from psycopg.rows import dict_row

from ledger import correlation, sqlfiles
from ledger.db import Database
from ledger.errors import DispatchFailed, IllegalDispatchTransition, LedgerWriteFailed
from ledger.models import DispatchStatus
from ledger.modes import Counters, ModeSource

log = logging.getLogger("phasegate.ledger.dispatch")

DISPATCHING = DispatchStatus.DISPATCHING.value
TERMINAL_STATUSES = frozenset(
    s.value for s in (DispatchStatus.ENQUEUED, DispatchStatus.ENQUEUE_FAILED,
                      DispatchStatus.INLINE_EMERGENCY))
LEGACY_KEY_PREFIX = "dispatch:"  # legacy Redis dedupe key: dispatch:{dispatch_key}
DEFAULT_STREAM = "phasegate:dispatch"
# The winner's path is this one statement. ON CONFLICT DO NOTHING waits for an in-flight
# inserter of the same key to commit, then inserts nothing: rowcount 1 means this caller
# won. Measured against DO UPDATE ... RETURNING (xmax = 0): that form cost ~40% of the
# throughput (a row version per duplicate, and the RETURNING payload), so duplicates pay a
# second statement instead (GET_SQL) and winners pay nothing extra.
REGISTER_SQL = sqlfiles.query(__file__, "dispatch", "register_dispatch")
MARK_SQL = sqlfiles.query(__file__, "dispatch", "mark_dispatch")
GET_SQL = sqlfiles.query(__file__, "dispatch", "get_dispatch")
STUCK_SQL = sqlfiles.query(__file__, "dispatch", "stuck_dispatches")
TAKEOVER_SQL = sqlfiles.query(__file__, "dispatch", "take_over_dispatch")


@dataclass(frozen=True)
class DispatchEvent:
    """What a sender hands to the queue."""

    source: str
    dispatch_key: str
    correlation_id: str
    window_start: datetime
    window_end: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_fields(self) -> dict[str, str]:
        return {"source": self.source, "dispatch_key": self.dispatch_key,
                "correlation_id": self.correlation_id,
                "window_start": self.window_start.isoformat(),
                "payload": json.dumps(dict(self.payload), default=str)}


class Sender(Protocol):
    """Hands an event to the queue; returns its event id, raises if the queue refused."""

    def send(self, event: DispatchEvent) -> str: ...


class RedisStreamSender:
    """The default sender: ``XADD`` onto a Redis stream (capped, approximately)."""

    def __init__(self, client: redis_lib.Redis, stream: str = DEFAULT_STREAM,
                 maxlen: int = 100_000) -> None:
        self.client, self.stream, self.maxlen = client, stream, maxlen

    def send(self, event: DispatchEvent) -> str:
        event_id = self.client.xadd(self.stream, event.to_fields(),  # type: ignore[arg-type]
                                    maxlen=self.maxlen, approximate=True)
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


@dataclass(frozen=True)
class Registration:
    """The answer to ``register``: who won the key, and the row as it stands."""

    dispatch_key: str
    source: str
    window_start: datetime
    window_end: datetime
    correlation_id: str
    won: bool
    status: str | None  # None in redis_only: Redis keeps no status
    event_id: str | None = None
    failure_message: str | None = None
    store: str = "db"  # db | redis

    @property
    def duplicate(self) -> bool:
        return not self.won


@dataclass(frozen=True)
class DispatchOutcome:
    """What ``dispatch`` did: sent (or ran inline) only when it won the key."""

    registration: Registration
    status: str | None
    sent: bool
    event_id: str | None = None
    failure_message: str | None = None

    @property
    def duplicate(self) -> bool:
        return self.registration.duplicate


def _registration(row: Mapping[str, Any], won: bool, store: str = "db") -> Registration:
    return Registration(
        dispatch_key=row["dispatch_key"], source=row["source"],
        window_start=row["window_start"], window_end=row["window_end"],
        correlation_id=row["correlation_id"], won=won, status=str(row["status"]),
        event_id=row["event_id"], failure_message=row["failure_message"], store=store)


class DispatchLedger:
    """Registers, sends and settles dispatches, following ``write_mode`` per call."""

    def __init__(self, db: Database, redis: redis_lib.Redis, modes: ModeSource, *,
                 windows: Mapping[str, float] | None = None, default_window: float = 60.0,
                 sender: Sender | None = None,
                 inline: Callable[[DispatchEvent], object] | None = None,
                 counters: Counters | None = None) -> None:
        self.db, self.redis, self.modes = db, redis, modes
        self.windows = dict(windows or {})
        self.default_window = default_window
        self.sender: Sender = sender or RedisStreamSender(redis)
        self.inline = inline  # None: inline emergency runs are not allowed
        self.counters = counters or Counters()

    # ------------------------------------------------------------------ keys

    def window(self, source: str, at: datetime) -> tuple[datetime, datetime]:
        """The [start, end) window of ``source`` that ``at`` falls in (naive = UTC)."""
        seconds = self.windows.get(source, self.default_window)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        start = math.floor(at.timestamp() / seconds) * seconds
        begin = datetime.fromtimestamp(start, UTC)
        return begin, begin + timedelta(seconds=seconds)

    def dispatch_key(self, source: str, at: datetime) -> str:
        return _key(source, self.window(source, at)[0])

    # ------------------------------------------------------------------ register

    def register(self, source: str, at: datetime, correlation_id: str | None = None
                 ) -> Registration:
        """Claim the (source, window) key: exactly one caller wins; the rest get the row."""
        start, end = self.window(source, at)
        key = _key(source, start)
        cid = correlation.ensure(correlation_id)
        modes = self.modes.modes()
        if not modes.writes_db:
            return self._register_redis(key, source, start, end, cid)
        def claim(conn: psycopg.Connection) -> Registration:
            if conn.execute(REGISTER_SQL, {
                    "dispatch_key": key, "source": source, "window_start": start,
                    "window_end": end, "correlation_id": cid}).rowcount:
                return Registration(key, source, start, end, cid, True, DISPATCHING)
            row = _one(conn, GET_SQL, {"dispatch_key": key})
            assert row is not None  # the conflicting row is committed (DO NOTHING waited)
            return _registration(row, won=False)

        try:
            reg = self.db.run(claim)
        except psycopg.Error as exc:
            raise LedgerWriteFailed("dispatch", key, exc) from exc
        if reg.won and modes.writes_redis:
            reg = self._settle_legacy_race(reg)
        self.counters.incr("dispatch_won" if reg.won else "dispatch_duplicate")
        return reg

    def _register_redis(self, key: str, source: str, start: datetime, end: datetime,
                        cid: str) -> Registration:
        ttl = max(1, math.ceil((end - start).total_seconds()))
        try:
            won = bool(self.redis.set(LEGACY_KEY_PREFIX + key, cid, nx=True, ex=ttl))
        except redis_lib.RedisError as exc:
            raise DispatchFailed(key, f"legacy Redis dedupe unavailable: {exc}") from exc
        self.counters.incr("dispatch_won" if won else "dispatch_duplicate")
        return Registration(key, source, start, end, cid, won,
                            DISPATCHING if won else None, store="redis")

    def _settle_legacy_race(self, reg: Registration) -> Registration:
        """In dual mode the winner also takes the legacy Redis key, so a process still on a
        stale ``redis_only`` flag sees it; if such a process got there first it already
        sent, and the row is settled ENQUEUED without a second send."""
        ttl = max(1, math.ceil((reg.window_end - reg.window_start).total_seconds()))
        try:
            fresh = self.redis.set(LEGACY_KEY_PREFIX + reg.dispatch_key, reg.correlation_id,
                                   nx=True, ex=ttl)
        except redis_lib.RedisError as exc:
            self._redis_failed("dispatch legacy key", reg.dispatch_key, exc)
            return reg
        if fresh:
            return reg
        settled = self.mark(reg.dispatch_key, DispatchStatus.ENQUEUED.value,
                            event_id="legacy-sender")
        return replace(settled, won=False)

    # ------------------------------------------------------------------ settle

    def mark(self, dispatch_key: str, status: str, *, event_id: str | None = None,
             failure_message: str | None = None) -> Registration:
        """Move a DISPATCHING row to a terminal status; anything else raises."""
        if status not in TERMINAL_STATUSES:
            raise IllegalDispatchTransition("dispatch", dispatch_key, None, status)

        def update(conn: psycopg.Connection) -> dict[str, Any] | None:
            return _one(conn, MARK_SQL, {"status": status, "event_id": event_id,
                                         "failure_message": failure_message,
                                         "dispatch_key": dispatch_key})

        try:
            row = self.db.run(update)
            current = None if row is not None else self.get(dispatch_key)
        except psycopg.Error as exc:
            raise LedgerWriteFailed("dispatch", dispatch_key, exc) from exc
        if row is None:
            if current is not None and current.status == status and event_id in (
                    None, current.event_id):
                return current  # the same move repeated (a retried call): idempotent
            raise IllegalDispatchTransition(
                "dispatch", dispatch_key, current.status if current else None, status)
        return _registration(row, won=True)

    def get(self, dispatch_key: str) -> Registration | None:
        row = self.db.run(lambda c: _one(c, GET_SQL, {"dispatch_key": dispatch_key}))
        return None if row is None else _registration(row, won=False)

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, source: str, at: datetime | None = None,
                 payload: Mapping[str, Any] | None = None,
                 correlation_id: str | None = None) -> DispatchOutcome:
        """Register, and if this call won the key, send (or run inline) and settle."""
        at = at or datetime.now(UTC)
        with correlation.use(correlation_id):
            reg = self.register(source, at)
            if not reg.won:
                log.info("dispatch %s: duplicate, not sent", reg.dispatch_key,
                         extra={"dispatch_key": reg.dispatch_key})
                return DispatchOutcome(reg, reg.status, sent=False, event_id=reg.event_id)
            return self._send_and_settle(reg, payload or {})

    def _send_and_settle(self, reg: Registration, payload: Mapping[str, Any]) -> DispatchOutcome:
        event = DispatchEvent(reg.source, reg.dispatch_key, reg.correlation_id,
                              reg.window_start, reg.window_end, payload)
        status, event_id, failure = self._deliver(event)
        if reg.store == "db":
            reg = self.mark(reg.dispatch_key, status, event_id=event_id, failure_message=failure)
        log.info("dispatch %s: %s", reg.dispatch_key, status,
                 extra={"dispatch_key": reg.dispatch_key, "status": status})
        sent = status != DispatchStatus.ENQUEUE_FAILED.value
        return DispatchOutcome(reg, status, sent=sent, event_id=event_id, failure_message=failure)

    def _deliver(self, event: DispatchEvent) -> tuple[str, str | None, str | None]:
        """Send; on failure run inline if allowed. -> (status, event id, failure message)."""
        try:
            return DispatchStatus.ENQUEUED.value, self.sender.send(event), None
        except Exception as exc:  # any queue failure: the policy below decides
            failure = f"enqueue failed: {type(exc).__name__}: {exc}"[:1000]
            log.warning("dispatch %s: %s", event.dispatch_key, failure)
        if self.inline is None:
            return DispatchStatus.ENQUEUE_FAILED.value, None, failure
        try:
            self.inline(event)
        except Exception as exc:  # the inline run failed too: record both
            failure += f"; inline run failed: {type(exc).__name__}: {exc}"
            return DispatchStatus.ENQUEUE_FAILED.value, None, failure[:2000]
        return DispatchStatus.INLINE_EMERGENCY.value, None, failure

    # ------------------------------------------------------------------ recovery

    def stuck(self, older_than: float = 60.0, limit: int = 100) -> list[Registration]:
        """Rows still DISPATCHING ``older_than`` seconds after creation and last touch."""
        def fetch(conn: psycopg.Connection) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(STUCK_SQL, {"older_than": older_than,
                                                "limit": limit}).fetchall()

        return [_registration(r, won=False) for r in self.db.run(fetch)]

    def recover(self, dispatch_key: str, older_than: float = 60.0,
                payload: Mapping[str, Any] | None = None) -> DispatchOutcome | None:
        """Take over a stuck DISPATCHING row and finish its send; None if not stuck (any
        more). The original correlation id is kept. If the original sender was slow rather
        than dead, ``older_than`` is what separates the two: keep it above the send timeout."""
        row = self.db.run(lambda c: _one(c, TAKEOVER_SQL, {"dispatch_key": dispatch_key,
                                                      "older_than": older_than}))
        if row is None:
            return None
        reg = _registration(row, won=True)
        with correlation.use(reg.correlation_id):
            log.warning("dispatch %s: recovering a sender that died in DISPATCHING",
                        dispatch_key)
            return self._send_and_settle(reg, payload or {})

    def _redis_failed(self, what: str, key: str, exc: Exception) -> None:
        self.counters.incr("redis_write_failures")
        log.warning("%s %s: Redis write failed (%s); database record kept", what, key,
                    type(exc).__name__)


def _key(source: str, window_start: datetime) -> str:
    """``{source}@{window start, UTC, to the second}Z``: readable and sortable."""
    return f"{source}@{window_start:%Y-%m-%dT%H:%M:%S}Z"


def _one(conn: psycopg.Connection, statement: str,
         params: Mapping[str, Any]) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchone()  # type: ignore[arg-type]
