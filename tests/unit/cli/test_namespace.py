"""The command namespace: ``tasks.py`` at the top, the same tasks under ``invoke`` and
``phasegate``, the console command usable from any directory, and where files are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.base import project_dir

ROOT = Path(__file__).resolve().parents[3]
PHASEGATE = Path(sys.executable).parent / "phasegate"

# Every task and name `invoke --list` had before tasks/ became tasks.py over cli/: a rename
# here is a breaking change for every runbook and CI job that calls one.
TASKS = sorted([
    "check", "demo", "lint", "migrate", "plan", "provision", "reconcile", "rollout", "verify",
    "dlq.discard", "dlq.list", "dlq.requeue", "dlq.show", "local.stop", "local.up",
])


def _names(listing: str) -> list[str]:
    def walk(coll: dict, prefix: str) -> list[str]:
        names = [prefix + t["name"] for t in coll["tasks"]]
        for sub in coll["collections"]:
            names += walk(sub, f"{prefix}{sub['name']}.")
        return names
    return sorted(walk(json.loads(listing), ""))


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_tasks_py_is_the_top_level_entry_point() -> None:
    assert (ROOT / "tasks.py").is_file()
    assert not (ROOT / "tasks").exists()


def test_invoke_lists_every_task() -> None:
    out = _run([sys.executable, "-m", "invoke", "--list", "--list-format", "json"], ROOT)
    assert out.returncode == 0, out.stderr
    assert _names(out.stdout) == TASKS


def test_phasegate_lists_the_same_tasks_from_any_directory(tmp_path: Path) -> None:
    assert PHASEGATE.exists(), "the phasegate console script is not installed (pip install -e .)"
    out = _run([str(PHASEGATE), "--list", "--list-format", "json"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert _names(out.stdout) == TASKS
    assert list(tmp_path.iterdir()) == []  # listing writes nothing


def test_phasegate_help_outside_the_repository(tmp_path: Path) -> None:
    top = _run([str(PHASEGATE), "--help"], tmp_path)
    assert top.returncode == 0 and "--log-format" in top.stdout
    task = _run([str(PHASEGATE), "--help", "rollout"], tmp_path)
    assert task.returncode == 0 and "--phase" in task.stdout and "--rollback" in task.stdout


def test_bad_log_format_is_one_line(tmp_path: Path) -> None:
    out = _run([str(PHASEGATE), "--log-format", "xml", "--list"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "phasegate: log format must be one of text, json, not 'xml'"


def test_output_piped_into_head_is_quiet(tmp_path: Path) -> None:
    proc = subprocess.run(f"'{PHASEGATE}' --help | head -1", shell=True, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("Usage: phasegate")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


class TestProjectDir:
    def test_the_working_directory_by_default(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PHASEGATE_CONFIG", raising=False)
        assert project_dir(tmp_path) == tmp_path.resolve()

    def test_the_nearest_folder_with_a_config(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PHASEGATE_CONFIG", raising=False)
        (tmp_path / "phasegate.toml").write_text("")
        deep = tmp_path / "a" / "b"
        deep.mkdir(parents=True)
        assert project_dir(deep) == tmp_path.resolve()

    def test_the_folder_of_local_servers(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PHASEGATE_CONFIG", raising=False)
        (tmp_path / ".phasegate").mkdir()
        (tmp_path / "sub").mkdir()
        assert project_dir(tmp_path / "sub") == tmp_path.resolve()

    def test_the_config_variable_wins(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        elsewhere = tmp_path / "conf"
        elsewhere.mkdir()
        monkeypatch.setenv("PHASEGATE_CONFIG", str(elsewhere / "phasegate.toml"))
        assert project_dir(tmp_path) == elsewhere.resolve()

    def test_never_the_installed_package(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("PHASEGATE_CONFIG", raising=False)
        import cli

        assert Path(cli.__file__).resolve().parent not in (project_dir(tmp_path), *project_dir(tmp_path).parents)


def test_terminal_log_lines_mask_a_known_password() -> None:
    import io
    import logging

    from cli import logs
    from phasegate.urls import parse_url

    parse_url("postgresql://app:Sekr3t%40Pass@db/prod")
    logs.configure_logging("text", "INFO")
    assert logs._installed is not None
    stream = io.StringIO()
    logs._installed.setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("phasegate.test").error("login failed for Sekr3t@Pass (%s)", "Sekr3t%40Pass")
    text = stream.getvalue()
    assert "Sekr3t" not in text and "***" in text
