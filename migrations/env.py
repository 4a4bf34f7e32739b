"""Alembic environment: one transaction per revision, so a revision can step out of it
(``autocommit_block``) for CREATE INDEX CONCURRENTLY without dragging its neighbours along."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from ledger.models import Base
from migrations.api import restamp_renamed

config = context.config
target_metadata = Base.metadata


def _include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    # alembic_version is Alembic's own; nothing else is excluded.
    return not (type_ == "table" and name == "alembic_version")


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
        include_object=_include_object,
        compare_type=True,
    )


def _restamp(connection) -> None:  # type: ignore[no-untyped-def]
    # Before Alembic reads alembic_version: a database stamped with a renamed revision's old
    # id (migrations.points.RENAMED) would otherwise be "a revision this kit does not ship".
    if connection.in_transaction():
        restamp_renamed(connection)  # the caller's transaction: it commits with the rest
    else:
        with connection.begin():
            restamp_renamed(connection)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _restamp(connection)
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("phasegate migrations need a database URL or an open connection")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _restamp(conn)
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("phasegate migrations run online only (they need lock_timeout retries)")
run_migrations_online()
