"""Every bad input the release manager's review found gives one line, the documented exit
code (0 done, 1 refused or a check failed, 2 could not run: bad input or an unreachable
server, 130 stopped), and no traceback. Run through the installed ``phasegate`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PHASEGATE = Path(sys.executable).parent / "phasegate"
DOWN_DB = "postgresql://app:pw-9d1c@127.0.0.1:9/app"  # nothing listens on port 9
DOWN_REDIS = "redis://127.0.0.1:9/0"


def _run(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PHASEGATE_")}
    full.update({"PHASEGATE_CONFIG": str(tmp / "phasegate.toml"), "PHASEGATE_LOG_LEVEL": "WARNING",
                 **env})
    return subprocess.run([str(PHASEGATE), *args], cwd=tmp, env=full, capture_output=True,
                          text=True, timeout=120)


def _setup(tmp: Path, shape: str) -> dict[str, str]:
    """Files and variables one example needs; returns extra environment variables."""
    down = {"PHASEGATE_ST_DB_URL": DOWN_DB, "PHASEGATE_ST_REDIS_URL": DOWN_REDIS}
    if shape == "config-dir":
        (tmp / "phasegate.toml").mkdir()
    elif shape == "config-deep":
        (tmp / "phasegate.toml").write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    elif shape == "no-url-var":
        (tmp / "phasegate.toml").write_text(
            '[environments.st]\ndb_url_env = "ST_DB"\nredis_url_env = "ST_REDIS"\n')
        return {"ST_DB": DOWN_DB, "ST_REDIS": "hello"}
    elif shape == "bogus-option":
        return {**down, "PHASEGATE_ST_DB_URL": DOWN_DB + "?bogus=1"}
    elif shape == "under-a-file":
        (tmp / "file").write_text("x")
    return down


CASES = {
    # name: (setup, args, exit code, words the one line holds)
    "config is a directory": ("config-dir", ["plan", "--env", "st", "--out", "-"], 2, "is not a file"),
    "config nests 50,000 arrays": ("config-deep", ["plan", "--env", "st", "--out", "-"], 2,
                                   "nested too deeply"),
    "redis_url_env holds no URL": ("no-url-var", ["rollout", "--status", "--env", "st"], 2,
                                   "$ST_REDIS holds no URL"),
    "unknown libpq option in rollout": ("bogus-option", ["rollout", "--status", "--env", "st"], 2,
                                        'invalid URI query parameter: "bogus"'),
    "unknown libpq option in dlq.list": ("bogus-option", ["dlq.list", "--env", "st"], 2, "bogus"),
    "unknown libpq option in check": ("bogus-option", ["check", "--env", "st"], 2, "bogus"),
    "migrate, server down": ("down", ["migrate", "--env", "st", "--to", "kit"], 2, "port 9"),
    "rollout, server down": ("down", ["rollout", "--status", "--env", "st"], 2,
                             "cannot reach the database of st"),
    "check, server down": ("down", ["check", "--env", "st", "--phase", "expand"], 2,
                           "cannot reach the database of st"),
    "plan, server down": ("down", ["plan", "--env", "st", "--out", "-"], 2,
                          "cannot reach the database of st"),
    "reconcile, server down": ("down", ["reconcile", "--env", "st", "--since", "2h"], 2, "port 9"),
    "verify --jobs abc": ("down", ["verify", "--jobs", "abc"], 2, "--jobs must be a whole number"),
    "reconcile --since 1000000000d": ("down", ["reconcile", "--env", "st", "--since", "1000000000d"],
                                      2, "at most 36500 days"),
    "dlq.list --older-than 99999999999w": ("down", ["dlq.list", "--env", "st", "--older-than",
                                                    "99999999999w"], 2, "at most 36500 days"),
    "check --output a directory": ("down", ["check", "--env", "st", "--output", "."], 2,
                                   "is a directory"),
    "check --output under a file": ("under-a-file", ["check", "--env", "st", "--output",
                                                     "file/report.xml"], 2, "cannot be written"),
    "verify --junit /dev/full": ("down", ["verify", "--junit", "/dev/full"], 2, "not a regular file"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_with_its_exit_code(name: str, tmp_path: Path) -> None:
    shape, args, code, words = CASES[name]
    out = _run(args, tmp_path, **_setup(tmp_path, shape))
    text = out.stdout + out.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert out.returncode == code, text
    assert len(lines) == 1 and lines[0].startswith("phasegate: ") and words in lines[0], lines
    assert "Traceback" not in text and "pw-9d1c" not in text


def test_plan_offline_writes_without_the_database(tmp_path: Path) -> None:
    out = _run(["plan", "--env", "st", "--phase", "expand", "--out", "-", "--offline"], tmp_path,
               **_setup(tmp_path, "down"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Rollback plan: expand on st")


def test_output_piped_into_head_is_quiet(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASEGATE_")}
    env.update({"PHASEGATE_CONFIG": str(tmp_path / "phasegate.toml"), **_setup(tmp_path, "down")})
    proc = subprocess.run(f"'{PHASEGATE}' plan --env st --out - --offline | head -1", shell=True,
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("# Rollback plan")
    assert proc.stderr == "", proc.stderr
