"""Make testcontainers work on this machine: Docker when one answers, else Podman.

``.ci/podman/setup`` (idempotent, fast once done) configures Podman for this kind of host,
builds local Postgres 15 / Redis 7 images when no registry is reachable, starts the
Docker-API socket and prints the environment testcontainers needs. :func:`use_containers`
runs it when no Docker engine answers and applies that environment to this process, so
``infra.ephemeral.postgres("containers")`` / ``redis("containers")`` then just work.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

from phasegate.errors import PhasegateError

SETUP = Path(__file__).resolve().parent.parent / ".ci" / "podman" / "setup"
# Variables the setup exports; testcontainers reads the first four.
ENV_NAMES = ("DOCKER_HOST", "TESTCONTAINERS_RYUK_DISABLED", "TC_HOST",
             "TESTCONTAINERS_CONNECTION_MODE", "PHASEGATE_PG_IMAGE", "PHASEGATE_REDIS_IMAGE",
             "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")


class ContainerEngineUnavailable(PhasegateError):
    """No Docker-API engine answers and Podman could not be set up."""


def engine_answers(timeout: float = 5.0) -> bool:
    """True when the Docker API at DOCKER_HOST (or the default socket) answers ``/_ping``.

    A raw HTTP request on a socket we close ourselves: cheaper than the Docker SDK and it
    leaves no connection behind (pytest turns a leaked socket into an error)."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(host[len("unix://"):])
            except OSError:
                sock.close()
                raise
        elif host.startswith("tcp://"):
            hostname, _, port = host[len("tcp://"):].rstrip("/").rpartition(":")
            sock = socket.create_connection((hostname, int(port)), timeout)
        else:
            return False
    except (OSError, ValueError):
        return False
    with sock:
        try:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0]
        except OSError:
            return False
    return status.startswith(b"HTTP/") and b" 200" in status


def parse_exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines -> {NAME: value} (other lines ignored)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and "=" in parts[1]:
            name, _, value = parts[1].partition("=")
            env[name] = value
    return env


def podman_env(timeout: float = 900.0) -> dict[str, str]:
    """Run ``.ci/podman/setup`` and return the environment it prints."""
    try:
        done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True,
                              timeout=timeout, check=False,
                              env={**os.environ, "PHASEGATE_FORCE_PODMAN": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ContainerEngineUnavailable(f"podman setup did not finish: {exc}") from exc
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise ContainerEngineUnavailable(
            f"podman setup failed: {last[-1] if last else f'exit {done.returncode}'}")
    return parse_exports(done.stdout)


def use_containers() -> str:
    """Make testcontainers usable in this process; returns ``docker`` or ``podman``."""
    if engine_answers():
        return "docker"
    os.environ.update(podman_env())
    if not engine_answers():
        raise ContainerEngineUnavailable(
            f"podman's API at {os.environ.get('DOCKER_HOST')} does not answer")
    return "podman"
