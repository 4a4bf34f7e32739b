"""The reliability schema as Alembic migrations, on a real PostgreSQL."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from ledger.models import BASELINE_TABLES, EXPAND_TABLES, KIT_TABLES, Base
from migrations import api
from migrations.points import CONTRACT, EXPAND, POINTS, RENAMED
from tests.conftest import to_dsn


def _tables(url: str) -> set[str]:
    with psycopg.connect(to_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows} - {"alembic_version"}


def _indexes(url: str) -> dict[str, bool]:
    with psycopg.connect(to_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        ).fetchall()
    return {name: valid for name, valid in rows}


def test_head_matches_models(make_db) -> None:
    url = make_db("head")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_points_create_their_tables(make_db) -> None:
    assert _tables(make_db("baseline")) == set(BASELINE_TABLES)
    assert _tables(make_db("kit")) == set(BASELINE_TABLES + KIT_TABLES)
    assert _tables(make_db("expand")) == set(BASELINE_TABLES + KIT_TABLES + EXPAND_TABLES)
    head = make_db("head")
    assert "ix_background_job_status_run_at" in _indexes(make_db("expand"))
    assert "ix_background_job_status_run_at" not in _indexes(head)
    assert all(_indexes(head).values()), "every index valid"


def test_upgrade_downgrade_upgrade_round_trips(make_db) -> None:
    url = make_db("baseline")
    with psycopg.connect(to_dsn(url)) as conn:
        conn.execute("INSERT INTO background_job (type, payload) VALUES ('email', '{\"to\": 1}')")
    api.upgrade(url, "head")
    first = (_tables(url), _indexes(url))
    api.downgrade(url, "kit")
    assert _tables(url) == set(BASELINE_TABLES + KIT_TABLES)
    assert api.current(url) == POINTS["kit"]
    api.downgrade(url, "baseline")
    assert _tables(url) == set(BASELINE_TABLES)
    api.upgrade(url, "head")
    assert (_tables(url), _indexes(url)) == first
    with psycopg.connect(to_dsn(url)) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone()[0] == 1


def test_baseline_downgrade_is_refused(make_db) -> None:
    url = make_db("baseline")
    with pytest.raises(Exception, match="never drops it"):
        api.downgrade(url, "base")
    assert _tables(url) == set(BASELINE_TABLES)


def test_append_only_tables_refuse_update_and_delete(make_db) -> None:
    url = make_db("head")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO phasegate_rollout_event (rollout_id, phase, event, actor) VALUES ('r', 'expand', 'started', 'me')"
        )
        for stmt in ("UPDATE phasegate_rollout_event SET actor = 'x'", "DELETE FROM phasegate_rollout_event"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(stmt)
        assert conn.execute("SELECT actor FROM phasegate_rollout_event").fetchone() == ("me",)


def test_foreign_revision_is_refused(make_db) -> None:
    url = make_db("baseline")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'someone_elses_rev'")
    with pytest.raises(api.UnknownMigrationState, match="refusing to guess"):
        api.current(url)


class _Holder(threading.Thread):
    """Holds a table lock in a second connection for ``hold`` seconds."""

    def __init__(self, url: str, lock_sql: str, hold: float) -> None:
        super().__init__(daemon=True)
        self.url, self.lock_sql, self.hold = url, lock_sql, hold
        self.locked = threading.Event()

    def run(self) -> None:
        with psycopg.connect(to_dsn(self.url)) as conn:
            conn.execute(self.lock_sql)
            self.locked.set()
            time.sleep(self.hold)
            conn.rollback()


def _insert_latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        while not stop.is_set():
            t0 = time.monotonic()
            conn.execute("INSERT INTO background_job (type) VALUES ('probe')")
            out.append(time.monotonic() - t0)
            time.sleep(0.01)


@pytest.mark.parametrize(
    ("start", "target", "lock_sql"),
    [
        # ALTER TABLE ADD COLUMN needs ACCESS EXCLUSIVE: blocked by any reader.
        ("p0006_expand_dead_letter_audit", "p0007_expand_job_columns",
         "LOCK TABLE background_job IN ACCESS SHARE MODE"),
        # CREATE INDEX CONCURRENTLY needs SHARE UPDATE EXCLUSIVE.
        ("p0007_expand_job_columns", "p0008_expand_job_indexes",
         "LOCK TABLE background_job IN SHARE UPDATE EXCLUSIVE MODE"),
        # ADD FOREIGN KEY NOT VALID needs SHARE ROW EXCLUSIVE on the referenced table.
        ("p0008_expand_job_indexes", "p0009_expand_dead_letter_fk",
         "LOCK TABLE background_job IN ROW EXCLUSIVE MODE"),
    ],
)
def test_expand_waits_fails_cleanly_retries_and_succeeds(
    make_db, monkeypatch, caplog, start: str, target: str, lock_sql: str
) -> None:
    lock_timeout_ms = 200
    monkeypatch.setenv("PHASEGATE_LOCK_TIMEOUT_MS", str(lock_timeout_ms))
    monkeypatch.setenv("PHASEGATE_DDL_RETRIES", "30")
    monkeypatch.setenv("PHASEGATE_DDL_BACKOFF_MS", "50")
    url = make_db("baseline")
    api.upgrade(url, start)
    holder = _Holder(url, lock_sql, hold=1.5)
    holder.start()
    assert holder.locked.wait(10)
    stop, latencies = threading.Event(), []
    prober = threading.Thread(target=_insert_latencies, args=(url, stop, latencies), daemon=True)
    prober.start()
    with caplog.at_level(logging.WARNING, logger="phasegate.migrations"):
        api.upgrade(url, target)
    stop.set()
    prober.join(10)
    holder.join(10)
    retries = [r for r in caplog.records if "lock_timeout on" in r.getMessage()]
    assert retries, "the migration should have hit lock_timeout at least once"
    assert api.current(url) == target
    assert all(_indexes(url).values()), "no INVALID index left behind"
    assert latencies, "concurrent inserts ran"
    # No insert queued behind the DDL lock request for much longer than lock_timeout.
    assert max(latencies) < lock_timeout_ms / 1000 + 1.0


def test_invalid_index_from_failed_build_is_rebuilt(make_db) -> None:
    url = make_db("baseline")
    api.upgrade(url, "p0007_expand_job_columns")
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        # What a CREATE INDEX CONCURRENTLY killed half-way leaves behind.
        conn.execute("CREATE INDEX ix_background_job_claimable ON background_job (id)")
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_background_job_claimable'::regclass"
        )
    api.upgrade(url, "p0008_expand_job_indexes")
    with psycopg.connect(to_dsn(url)) as conn:
        valid, definition = conn.execute(
            "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indexrelid = 'ix_background_job_claimable'::regclass"
        ).fetchone()
    assert valid is True
    assert "WHERE (status = 'PENDING'" in definition


def _stamp_raw(url: str, revision: str) -> None:
    with psycopg.connect(to_dsn(url), autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", (revision,))


def _version(url: str) -> str:
    with psycopg.connect(to_dsn(url)) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_a_database_stamped_with_a_renamed_id_still_works(make_db) -> None:
    # Databases migrated before the contract revision was renumbered carry its old id.
    [(old, new)] = [(o, n) for o, n in RENAMED.items() if n == CONTRACT]
    url = make_db("head")
    _stamp_raw(url, old)
    assert api.current(url) == CONTRACT  # reported under the new name, nothing written
    assert _version(url) == old
    api.upgrade(url, "head")  # nothing to run; the stamp is rewritten
    assert _version(url) == new
    _stamp_raw(url, old)
    api.downgrade(url, "expand")  # the renamed revision's downgrade runs
    assert api.current(url) == EXPAND
    assert "ix_background_job_status_run_at" in _indexes(url)
    api.upgrade(url, "head")
    assert api.current(url) == CONTRACT and "ix_background_job_status_run_at" not in _indexes(url)
