"""Effect keys: a side effect runs at most once per key, across retries and rescues.

In ``dual``/``db_only`` :meth:`EffectLedger.once` opens a transaction, inserts the key into
``background_job_effect`` (``ON CONFLICT DO NOTHING``), runs the effect with that same
connection and commits both together: the key exists exactly when the effect's own
database record does. A second attempt finds the key and gets the stored result back
instead of running the effect. A concurrent attempt with the same key waits on the first
one's uncommitted insert, so two attempts never both run it.

For effects outside the database (a message sent over the network) the guarantee is
"never repeated once recorded": if the process dies after the send and before the commit,
the effect can run again, which is the best any system without a two-phase commit with the
receiver can offer. Record the send in the database inside ``fn`` to narrow that gap.

In ``redis_only`` (the legacy mode, the table may not exist) the key is a Redis
``SET NX``, deleted again if the effect raised: best effort, as before the rollout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
import redis as redis_lib
from psycopg.types.json import Jsonb

from ledger import sqlfiles
from ledger.db import Database
from ledger.errors import LedgerWriteFailed
from ledger.modes import Counters, ModeSource

log = logging.getLogger("phasegate.ledger.effects")

R = TypeVar("R")
LEGACY_PREFIX = "effect:"
LEGACY_TTL_SECONDS = 7 * 24 * 3600

CLAIM_SQL = sqlfiles.query(__file__, "effects", "claim_effect")
RESULT_SQL = sqlfiles.query(__file__, "effects", "effect_result")
STORE_SQL = sqlfiles.query(__file__, "effects", "store_effect_result")


@dataclass(frozen=True)
class EffectResult(Generic[R]):
    """``ran``: this call ran the effect; otherwise ``value`` is what the first run stored."""

    effect_key: str
    ran: bool
    value: R | Any


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None  # results that are not JSON are not stored (the effect still counts)
    return value


class EffectLedger:
    """Runs side effects at most once per effect key (see the module doc)."""

    def __init__(self, db: Database, redis: redis_lib.Redis, modes: ModeSource,
                 counters: Counters | None = None) -> None:
        self.db, self.redis, self.modes = db, redis, modes
        self.counters = counters or Counters()

    def once(self, effect_key: str, fn: Callable[[psycopg.Connection | None], R], *,
             job_id: int | None = None, run_key: str | None = None) -> EffectResult[R]:
        """Run ``fn`` unless ``effect_key`` already happened.

        ``fn`` gets the transaction's connection (None in redis_only) so it can write the
        effect's own record atomically with the key."""
        modes = self.modes.modes()
        if not modes.writes_db:
            return self._once_redis(effect_key, fn)
        if modes.writes_redis and self._legacy_marker(effect_key):
            # A process still on a stale redis_only flag already ran it.
            return EffectResult(effect_key, False, None)
        try:
            result = self._once_db(effect_key, fn, job_id, run_key)
        except psycopg.Error as exc:
            raise LedgerWriteFailed("effect", effect_key, exc) from exc
        if result.ran and modes.writes_redis:
            self._set_legacy_marker(effect_key)
        return result

    def _once_db(self, key: str, fn: Callable[[psycopg.Connection | None], R],
                 job_id: int | None, run_key: str | None) -> EffectResult[R]:
        def attempt(conn: psycopg.Connection) -> EffectResult[R]:
            with conn.transaction():
                claimed = conn.execute(CLAIM_SQL, {"effect_key": key, "job_id": job_id,
                                                   "run_key": run_key}).fetchone()
                if claimed is None:
                    row = conn.execute(RESULT_SQL, {"effect_key": key}).fetchone()
                    return EffectResult(key, False, row[0] if row else None)
                value = fn(conn)  # raising rolls back the key with the effect's record
                conn.execute(STORE_SQL, {"result": Jsonb(_jsonable(value)), "effect_key": key})
            return EffectResult(key, True, value)

        # Not retried on a broken connection (the commit may have happened); a stale
        # prepared statement is retried by Database.run (the transaction rolled back).
        result = self.db.run(attempt, retry_broken=False)
        if result.ran:
            self.counters.incr("effect_ran")
        else:
            self.counters.incr("effect_skipped")
            log.info("effect %s already happened; not repeated", key)
        return result

    def _once_redis(self, key: str, fn: Callable[[psycopg.Connection | None], R]
                    ) -> EffectResult[R]:
        try:
            fresh = self.redis.set(LEGACY_PREFIX + key, "1", nx=True, ex=LEGACY_TTL_SECONDS)
        except redis_lib.RedisError as exc:
            raise LedgerWriteFailed("effect", key, exc, store="redis") from exc
        if not fresh:
            self.counters.incr("effect_skipped")
            return EffectResult(key, False, None)
        try:
            value = fn(None)
        except BaseException:
            self.redis.delete(LEGACY_PREFIX + key)
            raise
        self.counters.incr("effect_ran")
        return EffectResult(key, True, value)

    def _legacy_marker(self, key: str) -> bool:
        try:
            return bool(self.redis.exists(LEGACY_PREFIX + key))
        except redis_lib.RedisError:
            return False  # the database decides; Redis is best effort in dual

    def _set_legacy_marker(self, key: str) -> None:
        try:
            self.redis.set(LEGACY_PREFIX + key, "1", ex=LEGACY_TTL_SECONDS)
        except redis_lib.RedisError as exc:
            self.counters.incr("redis_write_failures")
            log.warning("effect %s: legacy Redis marker not written (%s)", key,
                        type(exc).__name__)
