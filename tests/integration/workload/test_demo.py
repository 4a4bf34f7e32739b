"""``invoke demo``: bad input is one line and a non-zero exit; the full demo on throwaway
servers walks every phase with its gate while the workload runs without a failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from demo.run import run_demo
from ledger.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("args, message", [
    (["--jobs", "abc"], "--jobs and --workers must be integers"),
    (["--env", "staging"], "the demo runs on --env local"),
])
def test_bad_input_is_one_line(args, message) -> None:
    proc = subprocess.run([sys.executable, "-m", "invoke", "demo", *args], cwd=PROJECT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_bad_sizes_refused_before_any_server_starts() -> None:
    with pytest.raises(ConfigError, match="--jobs must be at least 100"):
        run_demo("local", PROJECT, jobs=5)
    with pytest.raises(ConfigError, match="--rate"):
        run_demo("local", PROJECT, jobs=1000, rate=0)


@pytest.mark.slow
def test_demo_on_throwaway_servers(tmp_path) -> None:
    result = run_demo("ci", PROJECT, jobs=2000, workers=2, rate=60, plans_dir=tmp_path)
    assert [p.phase for p in result.phases] == [
        "expand", "dual_write", "cutover", "retention", "contract"]
    assert result.ok, [(p.phase, p.outcome, p.error) for p in result.phases]
    assert result.workload.ops > 0 and result.workload.failed == 0, result.workload.errors
    assert all(p.workload.ops > 0 and p.gate for p in result.phases)
    assert sorted(f.name for f in tmp_path.glob("*.md")) == [
        "contract.md", "cutover.md", "dual_write.md", "expand.md", "retention.md"]
