"""ReliabilityRedis: the Redis that holds job status, self-hosted in Docker or managed.

Self-hosted, the choice of persistence and eviction follows from what this Redis holds
(``ledger/redis_layout.py``: one status hash per function run, with a TTL):

* **Persistence: AOF, fsync every second.** Before cutover Redis is the *only* record of
  run status, so a restart must not forget it; ``everysec`` loses at most about a second of
  status writes on a crash, which the dual-write parity check reports, at a fraction of the
  cost of ``always``.
* **Eviction: ``noeviction``.** Evicting would silently drop the only copy of a run's status
  (or, during dual-write, make parity fail for reasons nobody can see). With ``noeviction`` a
  full Redis refuses writes loudly; the TTLs already bound the data, and ``maxmemory`` keeps
  the host from being OOM-killed.

The default user is disabled; the one ACL user may not run ``@dangerous`` commands
(FLUSHALL, CONFIG, KEYS, DEBUG, ...). The ACL file stores only the SHA-256 of the password,
so the plain password is in neither the container's command line nor its filesystem.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from phasegate.errors import ConfigError

ACL_PATH = "/usr/local/etc/redis/users.acl"
# Matched whole (fullmatch): with match() and $, a trailing newline passed.
_ACL_TOKEN = re.compile(r"[A-Za-z0-9_:*?.\-\[\]{}]+")
_MEMORY = re.compile(r"[0-9]+(kb|mb|gb)?", re.I)


@dataclass(frozen=True)
class DockerRedisArgs:
    """A Redis container on a Docker engine (the local one unless ``docker_host`` is set)."""

    image: str = "redis:7.4-alpine"
    host_port: int = 6379
    bind_ip: str = "127.0.0.1"  # publish on loopback unless told otherwise
    public_host: str = "127.0.0.1"  # the host in the URL clients use
    username: str = "phasegate"
    maxmemory: str = "256mb"
    key_patterns: tuple[str, ...] = ("*",)
    container_name: str = "phasegate-redis"
    docker_host: str | None = None
    password_length: int = 32

    def __post_init__(self) -> None:
        if not _ACL_TOKEN.fullmatch(self.username) or "*" in self.username:
            raise ConfigError(f"redis username must be a plain word, not {self.username!r}")
        if not self.key_patterns or not all(_ACL_TOKEN.fullmatch(p) for p in self.key_patterns):
            raise ConfigError("redis key patterns must be non-empty glob words")
        if not _MEMORY.fullmatch(self.maxmemory):
            raise ConfigError(f"redis maxmemory must look like 256mb, not {self.maxmemory!r}")
        if not 0 < self.host_port < 65536:
            raise ConfigError(f"redis port must be 1-65535, not {self.host_port}")


@dataclass(frozen=True)
class ReliabilityRedisArgs:
    """Exactly one of: a managed Redis's URL (secret), or a self-hosted container."""

    managed_url: pulumi.Input[str] | None = None
    docker: DockerRedisArgs | None = None

    def __post_init__(self) -> None:
        if (self.managed_url is None) == (self.docker is None):
            raise ConfigError("redis: give either a managed URL or docker settings, not both")


def acl_file(username: str, password: str, key_patterns: tuple[str, ...]) -> str:
    """The users.acl content: default user off, one user limited to its keys, no @dangerous."""
    digest = hashlib.sha256(password.encode()).hexdigest()
    keys = " ".join(f"~{p}" for p in key_patterns)
    return (
        "user default off\n"
        f"user {username} on #{digest} resetkeys {keys} resetchannels &* +@all -@dangerous\n"
    )


def redis_server_command(maxmemory: str) -> list[str]:
    """The container's command: ACL file, AOF every second, noeviction (see module doc)."""
    return [
        "redis-server", "--aclfile", ACL_PATH,
        "--appendonly", "yes", "--appendfsync", "everysec",
        "--maxmemory", maxmemory, "--maxmemory-policy", "noeviction",
    ]


def redis_url(username: str, password: str, host: str, port: int) -> str:
    return f"redis://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/0"


class ReliabilityRedis(pulumi.ComponentResource):
    """Redis for job status; ``url`` is always a secret output."""

    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ReliabilityRedisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("phasegate:infra:ReliabilityRedis", name, None, opts)
        self.container: docker.Container | None = None
        if args.docker is None:
            assert args.managed_url is not None  # ReliabilityRedisArgs checks: one or the other
            self.url = pulumi.Output.secret(args.managed_url)
        else:
            self.url = self._self_hosted(name, args.docker)
        self.register_outputs({"url": self.url})

    def _self_hosted(self, name: str, cfg: DockerRedisArgs) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        if cfg.docker_host:
            provider = docker.Provider(f"{name}-docker", host=cfg.docker_host, opts=child)
            child = pulumi.ResourceOptions(parent=self, provider=provider)
        password: pulumi.Output[str] = pulumi.Output.secret(random.RandomPassword(
            f"{name}-password", length=cfg.password_length, special=False,
            opts=pulumi.ResourceOptions(parent=self),
        ).result)
        image = docker.RemoteImage(f"{name}-image", name=cfg.image, keep_locally=True, opts=child)
        volume = docker.Volume(f"{name}-data", name=f"{cfg.container_name}-data", opts=child)
        acl: pulumi.Output[str] = pulumi.Output.secret(
            password.apply(lambda pw: acl_file(cfg.username, pw, cfg.key_patterns))
        )
        self.container = docker.Container(
            f"{name}-container",
            name=cfg.container_name,
            image=image.image_id,
            command=redis_server_command(cfg.maxmemory),
            uploads=[docker.ContainerUploadArgs(file=ACL_PATH, content=acl)],
            ports=[docker.ContainerPortArgs(internal=6379, external=cfg.host_port, ip=cfg.bind_ip)],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path="/data")],
            restart="unless-stopped",
            must_run=True,
            opts=child,
        )
        return pulumi.Output.secret(password.apply(
            lambda pw: redis_url(cfg.username, pw, cfg.public_host, cfg.host_port)
        ))
