"""Pooled PostgreSQL connections for the write path.

Two pools over one URL:

* ``engine``: an ordinary SQLAlchemy engine (transactions as SQLAlchemy manages them), for
  :class:`ledger.flags.FlagReader` and anything else written against SQLAlchemy;
* the write path's own small pool of **autocommit** psycopg connections
  (:meth:`Database.connect`), so a single-statement write (``INSERT ... ON CONFLICT ...
  RETURNING``) is one round trip, and multi-statement ones use ``conn.transaction()``.

Prepared statements (psycopg prepares a statement after 5 runs) go stale when the rollout
drops and re-creates the tables they use (expand rolled back, then re-applied): such an
error resets the pool and the statement, which did not run, is retried on a fresh
connection.

Disconnects are handled optimistically rather than with ``pool_pre_ping``: measured on
loopback, a ping per checkout costs ~40% of the throughput of a one-statement write. A
statement that fails because its connection broke (a Postgres restart) invalidates that
connection and :meth:`Database.run` retries the operation once on a fresh one; every
ledger write is idempotent (ON CONFLICT, or guarded by the state it expects), so the retry
cannot double-apply. Any other failure raises: a record is never silently dropped.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from ledger.errors import LedgerError

T = TypeVar("T")


def to_sqlalchemy_url(url: str) -> str:
    """Accept libpq URLs too: postgresql:// -> postgresql+psycopg://."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# A prepared statement outlived the schema it was planned against: the rollout dropped and
# re-created a table or enum (expand rolled back, then re-applied) under a running process.
_STALE_PLAN_STATES = {"0A000", "XX000", "26000"}
_STALE_PLAN_TEXT = ("cached plan must not change result type", "cache lookup failed",
                    "prepared statement")


def stale_plan(exc: BaseException) -> bool:
    """Did ``exc`` come from a prepared statement planned against a schema since changed?"""
    state = getattr(exc, "sqlstate", None)
    return state in _STALE_PLAN_STATES and any(t in str(exc) for t in _STALE_PLAN_TEXT)


class PoolExhausted(LedgerError):
    """Every connection of the write path's pool stayed busy for the whole wait."""


class _Pool:
    """A small LIFO pool of autocommit psycopg connections.

    Not SQLAlchemy's pool: its checkout/checkin bookkeeping measured ~15% of a one-statement
    write. LIFO keeps the hottest connection (and its prepared statements) in use."""

    def __init__(self, conninfo: str, size: int, timeout: float) -> None:
        self.conninfo, self.timeout = conninfo, timeout
        # deque append/pop are atomic in CPython: no lock needed around the idle stack.
        self._idle: collections.deque[psycopg.Connection] = collections.deque()
        self._slots = threading.BoundedSemaphore(size)
        self._generation = 0

    def get(self) -> tuple[psycopg.Connection, int]:
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolExhausted(f"no free database connection within {self.timeout:.0f}s")
        generation = self._generation
        try:
            while True:
                try:
                    conn = self._idle.pop()
                except IndexError:
                    return psycopg.connect(self.conninfo, autocommit=True), generation
                if not (conn.closed or conn.broken):
                    return conn, generation
        except BaseException:
            self._slots.release()
            raise

    def put(self, conn: psycopg.Connection, generation: int) -> None:
        try:
            healthy = not (conn.closed or conn.broken) and generation == self._generation
            if healthy and conn.pgconn.transaction_status == TransactionStatus.IDLE:
                self._idle.append(conn)
            else:
                conn.close()
        finally:
            self._slots.release()

    def reset(self) -> None:
        """Drop every idle connection; ones in use are closed when returned."""
        self._generation += 1
        while True:
            try:
                self._idle.pop().close()
            except IndexError:
                return


class Database:
    """The write path's handle on one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20,
                 pool_timeout: float = 30.0) -> None:
        self.url = to_sqlalchemy_url(url)
        # Flag reads are rare (once per TTL), so a ping per checkout costs nothing there.
        self.engine: Engine = create_engine(self.url, pool_size=max(1, pool_size // 2),
                                            max_overflow=max_overflow, pool_pre_ping=True)
        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._pool = _Pool(conninfo, pool_size + max_overflow, pool_timeout)

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit psycopg connection from the pool (returned on exit)."""
        conn, generation = self._pool.get()
        try:
            yield conn
        except psycopg.Error as exc:
            if stale_plan(exc):
                self._pool.reset()
            raise
        finally:
            self._pool.put(conn, generation)

    def run(self, fn: Callable[[psycopg.Connection], T], *, retry_broken: bool = True) -> T:
        """``fn(conn)``, retried once on a fresh connection after a stale prepared statement
        (always safe: the statement failed before it ran) or, with ``retry_broken``, after
        a broken connection (``fn`` must then be idempotent; every ledger write is)."""
        for attempt in (1, 2):
            # get/put inline rather than ``with self.connect()``: this is the hot path.
            conn, generation = self._pool.get()
            try:
                return fn(conn)
            except psycopg.Error as exc:
                broken = retry_broken and isinstance(exc, psycopg.OperationalError) and (
                    conn.broken or conn.closed)
                if attempt == 2 or not (broken or stale_plan(exc)):
                    raise
            finally:
                self._pool.put(conn, generation)
            # A restart broke every pooled connection, and a schema change staled every
            # connection's prepared statements: start over with fresh connections.
            self._pool.reset()
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        self._pool.reset()
