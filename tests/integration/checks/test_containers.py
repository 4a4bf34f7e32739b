"""The CI path: Postgres and Redis containers through testcontainers (Docker or Podman),
migrated to head, with the expand gate run against them.

Runs when a Docker-API engine answers (``eval "$(.ci/podman/setup)"`` first on a machine
without Docker), or when PHASEGATE_SETUP_CONTAINERS=1 lets the test run the setup itself
(minutes on first use: it builds the images). Skipped otherwise, with the reason.
Marked slow (about 20 s): run with ``python -m pytest -m containers``.
"""

from __future__ import annotations

import os

import pytest
import redis as redis_lib

from checks import Verdict, run_checks
from checks.containers import engine_answers, use_containers
from infra import ephemeral
from migrations import api
from migrations.points import HEAD, KIT
from rollout.gates import context
from rollout.phases import PHASES

pytestmark = [pytest.mark.containers, pytest.mark.slow,
              # testcontainers 4.15 deprecates the module path infra.ephemeral imports
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(scope="module")
def engine() -> str:
    if engine_answers():
        return "docker-api"
    if os.environ.get("PHASEGATE_SETUP_CONTAINERS") == "1":
        return use_containers()
    pytest.skip("no Docker-API engine: run `eval \"$(.ci/podman/setup)\"` or set "
                "PHASEGATE_SETUP_CONTAINERS=1")


def test_containers_migrate_and_gate(engine: str) -> None:
    with ephemeral.postgres("containers") as pg, ephemeral.redis("containers") as rd:
        assert pg.provider == rd.provider == "containers"
        client = redis_lib.Redis.from_url(rd.url)
        assert client.ping()
        client.close()
        api.upgrade(pg.url, "head")
        assert api.current(pg.url) == HEAD
        results = run_checks(PHASES["expand"].gate_checks, context(pg.url, rd.url))
        verdicts = {r.check_id: r.verdict for r in results}
        assert all(v is Verdict.PASS for v in verdicts.values()), results
        api.downgrade(pg.url, "kit")
        assert api.current(pg.url) == KIT
