"""The crash tests' kill switch is inert unless its variable names the point exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.fault_injection import FAULT_ENV

ROOT = Path(__file__).resolve().parents[2]

# Reaches an explicit point, then a point named only by the running action (as a revision's
# index build does), then prints: a kill at either point means no output.
CHILD = """
from infra.fault_injection import fault_point, running
fault_point("after", "expand.flag")
with running("expand.migrate.p0008"):
    fault_point("during")
print("survived")
"""


def _child(fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault is not None:
        env[FAULT_ENV] = fault
    return subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=60)


@pytest.mark.parametrize("fault", [None, "", "before:expand.flag", "during:expand.flag",
                                   "during:expand.migrate.p0008x"])
def test_inert_unless_the_variable_names_the_point(fault: str | None) -> None:
    done = _child(fault)
    assert done.returncode == 0 and done.stdout.strip() == "survived", done.stderr


@pytest.mark.parametrize("fault", ["after:expand.flag", "during:expand.migrate.p0008"])
def test_named_point_kills_the_process(fault: str) -> None:
    done = _child(fault)
    assert done.returncode == -signal.SIGKILL and done.stdout == ""

