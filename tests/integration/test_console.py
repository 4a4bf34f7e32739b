"""The ``phasegate`` console command against real servers, run from a folder outside the
repository: it finds its namespace without a ``tasks.py``, writes plans into the working
folder (never into the installed package), and its log lines reach stderr, as text or JSON,
carrying the rollout id, the phase and the action id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASEGATE = Path(sys.executable).parent / "phasegate"


def _phasegate(args: list[str], cwd: Path, db_url: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASEGATE_")}
    env.update(PHASEGATE_STAGE_DB_URL=db_url, PHASEGATE_STAGE_REDIS_URL=redis_url,
               PHASEGATE_ACTOR="console-test")
    return subprocess.run([str(PHASEGATE), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_rollout_from_outside_the_repository(tmp_path: Path, make_db: Callable[[str], str],
                                             redis_url: str) -> None:
    db = make_db("baseline")
    before = sorted(p.name for p in (ROOT / "plans").glob("*")) if (ROOT / "plans").exists() else []

    out = _phasegate(["--log-format", "json", "rollout", "--phase", "expand", "--env", "stage"],
                     tmp_path, db, redis_url)
    assert out.returncode == 0, out.stderr

    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    applies = [rec for rec in lines if rec["message"].startswith("[") and "] apply: " in rec["message"]]
    assert applies, out.stderr
    assert {"rollout_id", "phase", "action_id"} <= set(applies[0])
    assert applies[0]["phase"] == "expand" and applies[0]["action_id"].startswith("expand.")

    # Plans land in the working folder; the repository (the installed package) is untouched.
    assert (tmp_path / "plans" / "stage" / "expand.md").is_file()
    after = sorted(p.name for p in (ROOT / "plans").glob("*")) if (ROOT / "plans").exists() else []
    assert after == before and "stage" not in after

    status = _phasegate(["rollout", "--status", "--env", "stage", "--format", "json"], tmp_path,
                        db, redis_url)
    assert status.returncode == 0, status.stderr
    phases = {p["phase"]: p for p in json.loads(status.stdout)["phases"]}
    assert phases["expand"]["status"] == "gated"
    assert phases["expand"]["actor"] == "console-test"


def test_text_logs_carry_the_rollout_tag(tmp_path: Path, make_db: Callable[[str], str],
                                         redis_url: str) -> None:
    out = _phasegate(["rollout", "--phase", "expand", "--env", "stage"], tmp_path,
                     make_db("baseline"), redis_url)
    assert out.returncode == 0, out.stderr
    tagged = [line for line in out.stderr.splitlines() if "/expand/expand." in line and " INFO " in line]
    assert tagged, out.stderr
