"""``invoke local.up`` / ``local.stop``: the embedded, persistent Postgres + Redis."""

from __future__ import annotations

from invoke import task

from ledger.errors import mask_secrets
from tasks._cli import PROJECT, clean_errors


@task(help={"point": "migration point to reach: baseline | kit | expand | contract | head"})
def up(c, point="baseline"):
    """Start the embedded local Postgres + Redis (kept running) and migrate to a point."""
    from infra import local
    from migrations import api

    with clean_errors():
        st = local.up(PROJECT)
        api.upgrade(st.pg_url, point)
    print(f"local postgres: {mask_secrets(st.pg_url)}")
    print(f"local redis:    {st.redis_url}")
    print(f"migrated to:    {point} ({api.current(st.pg_url)})")


@task
def stop(c):
    """Stop the embedded local Postgres + Redis (their data is kept)."""
    from infra import local

    print("stopped" if local.down(PROJECT) else "nothing was running")

