"""``--env local`` is explicit: only ``local.up`` and ``demo`` start the embedded servers.
Every other command attaches and, when they are stopped (or were never started), says so in
one line and starts nothing; a stopped environment stays stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra import local

PHASEGATE = Path(sys.executable).parent / "phasegate"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASEGATE_")}
    return subprocess.run([str(PHASEGATE), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _one_line(out: subprocess.CompletedProcess[str], says: str) -> None:
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
    assert says in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_local_servers_start_only_when_asked_and_stay_stopped(tmp_path: Path) -> None:
    (tmp_path / "phasegate.toml").write_text("")  # this folder is the project
    never = _run("rollout", "--status", cwd=tmp_path)
    _one_line(never, "no local servers")
    assert not (tmp_path / ".phasegate").exists()  # nothing was started or created

    up = _run("local.up", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        status = _run("rollout", "--status", "--format", "json", cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["target"] == "local"
    finally:
        stop = _run("local.stop", cwd=tmp_path)
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr

    state = local.load_state(tmp_path)
    assert state is not None
    for args in (("rollout", "--status"), ("plan", "--out", "-"), ("dlq.list",),
                 ("check", "--phase", "expand")):
        _one_line(_run(*args, cwd=tmp_path), "local servers are stopped: run `invoke local.up`")
    # Still stopped: no command above started a server.
    assert not local._port_open(state.pg_port) and not local._port_open(state.redis_port)
