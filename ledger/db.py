"""Pooled PostgreSQL connections for the write path.

Two pools over one URL:

* ``engine``: an ordinary SQLAlchemy engine (transactions as SQLAlchemy manages them), for
  :class:`ledger.flags.FlagReader` and anything else written against SQLAlchemy;
* the write path's own small pool of **autocommit** psycopg connections
  (:meth:`Database.connect`), so a single-statement write (``INSERT ... ON CONFLICT ...
  RETURNING``) is one round trip, and multi-statement ones use ``conn.transaction()``.

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
        finally:
            self._pool.put(conn, generation)

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        """``fn(conn)``, retried once on a fresh connection if the first one was broken.

        ``fn`` must be idempotent (every ledger write is)."""
        for attempt in (1, 2):
            # get/put inline rather than ``with self.connect()``: this is the hot path.
            conn, generation = self._pool.get()
            try:
                return fn(conn)
            except psycopg.OperationalError:
                if attempt == 2 or not (conn.broken or conn.closed):
                    raise
            finally:
                self._pool.put(conn, generation)
            # A restart broke every pooled connection, not just this one.
            self._pool.reset()
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        self._pool.reset()
