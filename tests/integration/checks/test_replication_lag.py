"""health_replication_lag against a real streaming replica whose replay is paused."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest

from checks import Verdict, run_checks
from infra import ephemeral
from rollout.gates import context

pytestmark = pytest.mark.slow  # a second cluster and a base backup: several seconds


def _pg(server: ephemeral.PostgresServer, tool: str, *args: str) -> None:
    assert server.bin_dir is not None
    subprocess.run([str(server.bin_dir / tool), *args], check=True, capture_output=True,
                   user=server.run_as, cwd="/tmp", timeout=120)


@pytest.fixture
def primary_with_replica() -> Iterator[tuple[ephemeral.PostgresServer, str]]:
    """A fresh primary (local binaries) and a streaming replica; yields (primary, replica DSN)."""
    with ephemeral.postgres("binaries") as primary:
        replica_dir = ephemeral.make_data_dir("phasegate-replica-", primary.run_as)
        pgdata, port = replica_dir / "pgdata", ephemeral.free_port()
        try:
            _pg(primary, "pg_basebackup", "-D", str(pgdata), "-h", "127.0.0.1", "-p",
                str(primary.port), "-U", primary.user, "-R", "-X", "stream")
            _pg(primary, "pg_ctl", "-D", str(pgdata), "-w", "-l", str(replica_dir / "log"),
                "-o", f"-p {port} -c unix_socket_directories={replica_dir}", "start")
            yield primary, f"postgresql://{primary.user}@127.0.0.1:{port}/postgres"
        finally:
            if (pgdata / "postmaster.pid").exists():
                _pg(primary, "pg_ctl", "-D", str(pgdata), "-m", "immediate", "stop")
            subprocess.run(["rm", "-rf", str(replica_dir)], check=False)


def _lag(primary: ephemeral.PostgresServer, **params: float) -> tuple[Verdict, str, tuple]:
    [r] = run_checks(["health_replication_lag"], context(primary.url, None, **params))
    return r.verdict, r.summary, r.evidence


def test_replication_lag_pass_then_fail_when_replay_is_paused(
        primary_with_replica: tuple[ephemeral.PostgresServer, str]) -> None:
    primary, replica_dsn = primary_with_replica
    deadline = time.monotonic() + 30
    while True:  # wait until the replica streams and has caught up
        verdict, summary, evidence = _lag(primary, max_replication_lag_bytes=1024 * 1024)
        if evidence and evidence[0]["state"] == "streaming" and verdict is Verdict.PASS:
            break
        assert time.monotonic() < deadline, summary
        time.sleep(0.1)
    assert "1 replica(s)" in summary
    with psycopg.connect(replica_dsn, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
                         "FROM generate_series(1, 20000) g")
        deadline = time.monotonic() + 30
        while True:  # the replica received the WAL but does not replay it
            verdict, summary, evidence = _lag(primary, max_replication_lag_bytes=1024 * 1024)
            if verdict is Verdict.FAIL:
                break
            assert time.monotonic() < deadline, summary
            time.sleep(0.1)
        assert evidence[0]["replay_lag_bytes"] > 1024 * 1024
        replica.execute("SELECT pg_wal_replay_resume()")
