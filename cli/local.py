"""``invoke local.up`` / ``local.stop``: the embedded, persistent Postgres + Redis."""

from __future__ import annotations

from invoke import task

from cli.base import clean_errors, project_dir
from phasegate.text import mask_secrets


@task(help={"point": "migration point to reach: baseline | kit | expand | contract | head"})
def up(c, point="baseline"):
    """Start the embedded local Postgres + Redis (kept running) and migrate to a point."""
    from infra import local
    from migrations import api

    with clean_errors():
        st = local.up(project_dir())
        api.upgrade(st.pg_url, point)
    print(f"local postgres: {mask_secrets(st.pg_url)}")
    print(f"local redis:    {st.redis_url}")
    print(f"migrated to:    {point} ({api.current(st.pg_url)})")


@task
def stop(c):
    """Stop the embedded local Postgres + Redis (their data is kept)."""
    from infra import local

    print("stopped" if local.down(project_dir()) else "nothing was running")

