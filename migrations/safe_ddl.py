"""The one helper every revision uses for lock-sensitive DDL.

Why: on a busy table an ``ALTER TABLE`` waits for an ACCESS EXCLUSIVE lock behind any
long-running reader, and while it waits *every* later query on that table queues behind it.
A short ``lock_timeout`` turns "the application stalls" into "the migration fails fast and
tries again later"; retries with backoff and jitter make the migration still finish.

* :func:`execute` runs transactional DDL inside a SAVEPOINT with ``SET LOCAL lock_timeout``
  and ``statement_timeout``; a lock timeout (SQLSTATE 55P03) rolls back to the savepoint,
  sleeps and retries.
* :func:`create_index_concurrently` / :func:`drop_index_concurrently` run outside the
  revision's transaction (``autocommit_block``), and first drop an INVALID index of the same
  name left behind by an earlier failed ``CREATE INDEX CONCURRENTLY``.
* :func:`add_constraint_not_valid` + :func:`validate_constraint` add a constraint without a
  full-table scan under ACCESS EXCLUSIVE, then validate it under SHARE UPDATE EXCLUSIVE.

Tuning comes from the environment so a release manager can loosen or tighten it per
target without editing revisions: ``PHASEGATE_LOCK_TIMEOUT_MS`` (default 2000),
``PHASEGATE_STATEMENT_TIMEOUT_MS`` (default 0 = none for DDL), ``PHASEGATE_DDL_RETRIES``
(default 8), ``PHASEGATE_DDL_BACKOFF_MS`` (default 200).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from infra.fault_injection import fault_point
from phasegate.errors import IrreversibleMigration as IrreversibleMigration  # re-exported

log = logging.getLogger("phasegate.migrations")

LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class DdlSettings:
    lock_timeout_ms: int
    statement_timeout_ms: int
    retries: int
    backoff_ms: int

    @classmethod
    def from_env(cls) -> DdlSettings:
        def num(name: str, default: int) -> int:
            raw = os.environ.get(name, "")
            return int(raw) if raw.strip().isdigit() else default

        return cls(
            lock_timeout_ms=num("PHASEGATE_LOCK_TIMEOUT_MS", 2000),
            statement_timeout_ms=num("PHASEGATE_STATEMENT_TIMEOUT_MS", 0),
            retries=num("PHASEGATE_DDL_RETRIES", 8),
            backoff_ms=num("PHASEGATE_DDL_BACKOFF_MS", 200),
        )


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None)


def _backoff(settings: DdlSettings, attempt: int) -> float:
    # Exponential with full jitter: concurrent retriers do not line up behind the same lock.
    cap = settings.backoff_ms * (2 ** min(attempt, 6))
    return random.uniform(settings.backoff_ms, cap) / 1000.0


def _set_timeouts(conn: Connection, settings: DdlSettings, *, local: bool) -> None:
    scope = "LOCAL " if local else ""
    conn.execute(text(f"SET {scope}lock_timeout = {int(settings.lock_timeout_ms)}"))
    conn.execute(text(f"SET {scope}statement_timeout = {int(settings.statement_timeout_ms)}"))


def with_lock_retry(
    conn: Connection,
    work: Callable[[], object],
    *,
    what: str,
    settings: DdlSettings | None = None,
    in_transaction: bool = True,
    on_retry: Callable[[], None] | None = None,
) -> int:
    """Run ``work`` under the DDL timeouts, retrying lock timeouts; return the retries used."""
    settings = settings or DdlSettings.from_env()
    for attempt in range(settings.retries + 1):
        try:
            if in_transaction:
                with conn.begin_nested():
                    _set_timeouts(conn, settings, local=True)
                    work()
            else:
                _set_timeouts(conn, settings, local=False)
                work()
            return attempt
        except DBAPIError as exc:
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE or attempt == settings.retries:
                raise
            pause = _backoff(settings, attempt)
            log.warning(
                "lock_timeout on %s (attempt %d/%d); retrying in %.2fs",
                what,
                attempt + 1,
                settings.retries + 1,
                pause,
                extra={"ddl": what, "attempt": attempt + 1},
            )
            if on_retry is not None:
                on_retry()
            time.sleep(pause)
    raise AssertionError("unreachable")


def execute(sql: str, *, what: str | None = None) -> int:
    """Run one transactional DDL statement under lock_timeout with retry."""
    conn = op.get_bind()
    return with_lock_retry(conn, lambda: conn.execute(text(sql)), what=what or sql.split("\n")[0])


def _invalid_index_exists(conn: Connection, name: str) -> bool:
    row = conn.execute(
        text(
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"name": name},
    ).scalar()
    return bool(row)


def _quote(conn: Connection, ident: str) -> str:
    return conn.dialect.identifier_preparer.quote(ident)


@contextlib.contextmanager
def _outside_transaction() -> Iterator[Connection]:
    """The revision's connection in autocommit (``autocommit_block``), with the session's
    timeouts reset afterwards so they do not leak into the next revision."""
    with op.get_context().autocommit_block():
        conn = op.get_bind()
        try:
            yield conn
        finally:
            conn.execute(text("RESET lock_timeout"))
            conn.execute(text("RESET statement_timeout"))


def _autocommit_ddl(ddl_for: Callable[[Connection], str], what: str) -> int:
    with _outside_transaction() as conn:
        ddl = ddl_for(conn)
        return with_lock_retry(conn, lambda: conn.execute(text(ddl)), what=what,
                               in_transaction=False)


def create_index_concurrently(
    name: str,
    table: str,
    columns: str,
    *,
    unique: bool = False,
    where: str | None = None,
) -> int:
    """CREATE INDEX CONCURRENTLY outside the transaction, cleaning up an earlier INVALID one.

    ``columns`` and ``where`` are SQL fragments written in the revision itself, never input.
    """
    with _outside_transaction() as conn:
        q_name, q_table = _quote(conn, name), _quote(conn, table)
        ddl = (
            f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY IF NOT EXISTS {q_name} "
            f"ON {q_table} ({columns})" + (f" WHERE {where}" if where else "")
        )

        def drop_invalid() -> None:
            if _invalid_index_exists(conn, name):
                log.warning("dropping INVALID index %s left by a failed build", name)
                conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {q_name}"))

        def build() -> None:
            drop_invalid()
            conn.execute(text(ddl))

        done = with_lock_retry(conn, build, what=f"create index {name}", in_transaction=False,
                               on_retry=drop_invalid)
    fault_point("during")  # crash tests: killed between two index builds of one revision
    return done


def drop_index_concurrently(name: str) -> int:
    return _autocommit_ddl(lambda conn: f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(conn, name)}",
                           f"drop index {name}")


def add_constraint_not_valid(table: str, name: str, definition: str) -> int:
    """ADD CONSTRAINT ... NOT VALID: a brief lock, no scan of existing rows."""
    conn = op.get_bind()
    exists = conn.execute(
        text("SELECT 1 FROM pg_constraint WHERE conname = :n"), {"n": name}
    ).scalar()
    if exists:
        return 0
    ddl = (
        f"ALTER TABLE {_quote(conn, table)} ADD CONSTRAINT {_quote(conn, name)} "
        f"{definition} NOT VALID"
    )
    return execute(ddl, what=f"add constraint {name} NOT VALID")


def validate_constraint(table: str, name: str) -> int:
    """VALIDATE CONSTRAINT in its own transaction: SHARE UPDATE EXCLUSIVE, writes continue."""
    return _autocommit_ddl(
        lambda conn: f"ALTER TABLE {_quote(conn, table)} VALIDATE CONSTRAINT {_quote(conn, name)}",
        f"validate {name}")
