"""Move a database between the named points of ``migrations/points.py``."""

from __future__ import annotations

import functools
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from migrations.config import alembic_config
from migrations.points import POINTS, RENAMED
from phasegate.errors import ConfigError, PhasegateError


class MigrationError(PhasegateError):
    """A migration could not run."""


class UnknownPoint(MigrationError, ConfigError):
    """The migration target names no point or shipped revision (bad input)."""


class UnknownMigrationState(MigrationError):
    """The database's alembic_version names a revision this kit does not ship."""


def resolve(point: str) -> str:
    """A point name (baseline|kit|expand|contract|head), a shipped revision id or 'base'."""
    if point in ("head", "base"):
        return point
    if point in POINTS:
        return POINTS[point]
    if point in known_revisions():
        return point
    raise UnknownPoint(
        f"unknown migration point {point!r}; choose one of {', '.join([*POINTS, 'head'])}")


def _run(fn, url: str, point: str) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(alembic_config(url), resolve(point))
    except CommandError as exc:
        raise MigrationError(f"alembic: {exc}") from exc


def upgrade(url: str, point: str = "head") -> None:
    _run(command.upgrade, url, point)


def downgrade(url: str, point: str) -> None:
    _run(command.downgrade, url, point)


def stamp(url: str, point: str) -> None:
    _run(command.stamp, url, point)


@functools.cache
def _script() -> ScriptDirectory:
    # Parsing every revision file costs ~50 ms; the shipped files do not change in a process.
    return ScriptDirectory.from_config(alembic_config())


def revision_chain() -> list[str]:
    """Every shipped revision, oldest first (the history is one straight line)."""
    return [rev.revision for rev in reversed(list(_script().walk_revisions()))]


def restamp_renamed(conn: Connection) -> None:
    """Rewrite an old revision id (``RENAMED``) in ``alembic_version`` to its new one: the
    schema is the same, only the name changed. Runs in the caller's transaction."""
    if not conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar():
        return
    for old, new in RENAMED.items():
        conn.execute(text("UPDATE alembic_version SET version_num = :new WHERE version_num = :old"),
                     {"new": new, "old": old})


def known_revisions() -> list[str]:
    """Every shipped revision, newest first."""
    return revision_chain()[::-1]


def revision_module(revision: str) -> Any:
    """The revision's loaded module (its attributes: ``phase``, ``long_running``)."""
    return _script().get_revision(revision).module


def current(url: str) -> str | None:
    """The database's revision (None when never migrated); refuses foreign revisions."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()
    if not heads:
        return None
    # Read-only here: an old id is reported under its new name; env.py rewrites it on the
    # next migration command.
    heads = tuple(RENAMED.get(h, h) for h in heads)
    if len(heads) > 1:
        raise UnknownMigrationState(f"database has several migration heads: {', '.join(heads)}")
    if heads[0] not in known_revisions():
        raise UnknownMigrationState(
            f"database is at revision {heads[0]!r}, which phasegate does not ship; refusing to guess")
    return heads[0]


def point_of(revision: str | None) -> str | None:
    """The point name a revision ends, if it is one."""
    for name, rev in POINTS.items():
        if rev == revision:
            return name
    return None
