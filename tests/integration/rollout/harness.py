"""The shared harness: a seeded baseline target and snapshots of everything a phase touches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import redis as redis_lib

from demo.seed import seed_baseline
from rollout.engine import Rollout
from rollout.environments import Target
from rollout.phase import PHASE_ORDER
from rollout.settings import Settings

FAST = Settings(flag_ttl_seconds=0.05, lock_timeout_ms=500, backfill_batch_size=500,
                soak_seconds=0, retention_days=30, parity_grace_seconds=2.0,
                triage_budget_ms=2000,
                # No runner heartbeats the seeded RUNNING jobs in these tests.
                lease_seconds=3600)


def make_target(db_url: str, redis_url: str, *, jobs: int = 3000, settings: Settings = FAST,
                name: str = "test", production: bool = False) -> Target:
    seed_baseline(db_url, redis_url, jobs=jobs, redis_statuses=500, duplicate_ticks=20)
    return Target(name, db_url, redis_url, production, settings)


def apply_through(target: Target, last: str, tmp_path: Any, actor: str = "harness") -> None:
    """Apply every phase up to and including ``last`` (irreversible ones with --yes)."""
    ro = Rollout(target, actor, plans_dir=tmp_path / "plans")
    try:
        for name in PHASE_ORDER[: PHASE_ORDER.index(last) + 1]:
            ro.apply(name, yes=True)
    finally:
        ro.close()


@dataclass(frozen=True)
class Snapshot:
    revision: str | None
    tables: tuple[str, ...]
    indexes: tuple[tuple[str, bool], ...]
    columns: tuple[str, ...]
    enums: tuple[str, ...]
    flags: tuple[tuple[str, str], ...]
    phases: tuple[tuple[str, str], ...]
    counts: tuple[tuple[str, int], ...]
    redis_keys: int
    redis_persistent_keys: int


COUNTED = ("background_job", "background_function_run", "background_dispatch_window",
           "background_dead_letter")


def snapshot(target: Target) -> Snapshot:
    with psycopg.connect(target.dsn) as conn:
        def q(sql: str) -> list[tuple]:
            return conn.execute(sql).fetchall()

        def exists(name: str) -> bool:
            return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]

        revision = q("SELECT version_num FROM alembic_version")[0][0] if exists("alembic_version") else None
        tables = tuple(sorted(r[0] for r in q("SELECT tablename FROM pg_tables WHERE schemaname='public'")))
        indexes = tuple(sorted(q(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid=i.indexrelid "
            "JOIN pg_namespace n ON n.oid=c.relnamespace WHERE n.nspname='public'")))
        columns = tuple(sorted(f"{t}.{c}" for t, c in q(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema='public'")))
        enums = tuple(sorted(f"{t}.{label}" for t, label in q(
            "SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid=e.enumtypid")))
        flags = tuple(sorted(q("SELECT name, value FROM phasegate_flag"))) if exists("phasegate_flag") else ()
        phases = tuple(sorted(q("SELECT phase, status FROM phasegate_rollout_state"))) if exists("phasegate_rollout_state") else ()
        counts = tuple((t, q(f"SELECT count(*) FROM {t}")[0][0]) for t in COUNTED if exists(t))  # noqa: S608 (fixed names)
    r = redis_lib.Redis.from_url(target.redis_url)
    keys = list(r.scan_iter(match="jobstatus:*", count=1000))
    persistent = sum(1 for k in keys if r.ttl(k) > 3600 * 2)
    r.close()
    return Snapshot(revision, tables, indexes, columns, enums, flags, phases, counts, len(keys), persistent)


def flags_of(s: Snapshot) -> dict[str, str]:
    return dict(s.flags)


def phases_of(s: Snapshot) -> dict[str, str]:
    return dict(s.phases)
