"""Invoke entry point: thin tasks that parse flags and call into the packages.

Run ``invoke --list`` for the tasks and ``invoke --help TASK`` for each one's flags.
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Exit, task

from infra.ephemeral import ServerUnavailable
from ledger.errors import PhasegateError, mask_secrets

PROJECT = Path(__file__).resolve().parent


def _fail(exc: BaseException) -> Exit:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return Exit(f"phasegate: {mask_secrets(first)}", code=1)


@task(help={"point": "migration point to reach: baseline | kit | expand | contract | head"})
def up(c, point="baseline"):
    """Start the embedded local Postgres + Redis (kept running) and migrate to a point."""
    from infra import local
    from migrations import api

    try:
        st = local.up(PROJECT)
        api.upgrade(st.pg_url, point)
    except (PhasegateError, ServerUnavailable) as exc:
        raise _fail(exc) from None
    print(f"local postgres: {mask_secrets(st.pg_url)}")
    print(f"local redis:    {st.redis_url}")
    print(f"migrated to:    {point} ({api.current(st.pg_url)})")


@task
def stop(c):
    """Stop the embedded local Postgres + Redis (their data is kept)."""
    from infra import local

    print("stopped" if local.down(PROJECT) else "nothing was running")


local_ns = Collection("local", up, stop)
ns = Collection(local_ns)
