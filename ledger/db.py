"""Pooled PostgreSQL connections for the write path.

Two pools over one URL:

* ``engine``: an ordinary SQLAlchemy engine (transactions as SQLAlchemy manages them), for
  :class:`ledger.flags.FlagReader` and anything else written against SQLAlchemy;
* the write path's pool of **autocommit** psycopg connections (:meth:`Database.connect`),
  so a single-statement write (``INSERT ... ON CONFLICT ... RETURNING``) is one round trip,
  and multi-statement ones use ``conn.transaction()`` explicitly.

Disconnects are handled optimistically rather than with ``pool_pre_ping``: measured on
loopback, a ping per checkout costs ~40% of the throughput of a one-statement write. A
statement that fails because its connection broke (a Postgres restart) invalidates that
connection and :meth:`Database.run` retries the operation once on a fresh one; every
ledger write is idempotent (ON CONFLICT, or guarded by the state it expects), so the retry
cannot double-apply. Any other failure raises: a record is never silently dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

T = TypeVar("T")


def to_sqlalchemy_url(url: str) -> str:
    """Accept libpq URLs too: postgresql:// -> postgresql+psycopg://."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Database:
    """The write path's handle on one PostgreSQL database."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20,
                 pre_ping: bool = False) -> None:
        self.url = to_sqlalchemy_url(url)
        opts = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_pre_ping": pre_ping}
        self.engine: Engine = create_engine(self.url, **opts)
        self._autocommit: Engine = create_engine(self.url, isolation_level="AUTOCOMMIT", **opts)

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit psycopg connection from the pool (returned on exit)."""
        proxied = self._autocommit.raw_connection()
        conn = proxied.driver_connection
        assert isinstance(conn, psycopg.Connection)
        try:
            yield conn
        finally:
            if conn.broken or conn.closed:
                # Never hand a dead connection to the next caller.
                proxied.invalidate()
            else:
                proxied.close()

    def run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        """``fn(conn)``, retried once on a fresh connection if the first one was broken.

        ``fn`` must be idempotent (every ledger write is)."""
        for attempt in (1, 2):
            with self.connect() as conn:
                try:
                    return fn(conn)
                except psycopg.OperationalError:
                    if attempt == 2 or not (conn.broken or conn.closed):
                        raise
            # A restart broke every pooled connection, not just this one: start a new pool
            # (connections checked out elsewhere finish and are then dropped).
            self._autocommit.dispose(close=False)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        self._autocommit.dispose()

