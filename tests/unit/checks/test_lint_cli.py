"""``invoke lint`` for CI users: SARIF beside table/JSON/JUnit, ``--since REF``, and the
user's own migrations from ``phasegate.toml`` (``lint_paths``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from invoke import Context, Exit

from checks.lint import lint_paths, render_findings
from checks.lint.rules import RULES
from cli.check_render import findings_table
from cli.checks import lint as lint_task

UNSAFE = ('from alembic import op\nphase = "expand"\nrevision = "b"\ndown_revision = "a"\n\n'
          'def upgrade():\n    op.create_index("ix", "background_job", ["type"])\n')
SAFE = ('from migrations import safe_ddl\nphase = "expand"\nrevision = "a"\ndown_revision = None\n\n'
        'def upgrade():\n    safe_ddl.execute("ALTER TABLE background_job ADD COLUMN c text")\n')


def run(capsys: pytest.CaptureFixture[str], **kwargs: object) -> tuple[int, str, str]:
    try:
        lint_task(Context(), **kwargs)
        code, message = 0, ""
    except Exit as exc:
        code, message = exc.code, str(exc.message or "")
    return code, capsys.readouterr().out, message


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project: phasegate.toml naming its own migrations folder, in a git repo."""
    monkeypatch.delenv("PHASEGATE_CONFIG", raising=False)
    (tmp_path / "db" / "versions").mkdir(parents=True)
    (tmp_path / "db" / "versions" / "a.py").write_text(SAFE)
    (tmp_path / "phasegate.toml").write_text('lint_paths = ["db/versions"]\n')
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "safe"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_lint_paths_from_phasegate_toml(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, format="json")
    assert code == 0 and json.loads(out)["files"] == 1
    (project / "db" / "versions" / "b.py").write_text(UNSAFE)
    code, out, message = run(capsys, format="json")
    assert code == 1 and message == "phasegate: migration lint found 2 error(s)"
    assert {f["rule"] for f in json.loads(out)["findings"]} == {"PG001", "PG011"}


def test_since_lints_only_what_changed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, since="main", format="json")
    assert code == 0 and json.loads(out)["files"] == 0
    (project / "db" / "versions" / "b.py").write_text(UNSAFE)  # untracked, as in a PR
    code, out, _ = run(capsys, since="main", format="json")
    doc = json.loads(out)
    assert code == 1 and doc["files"] == 1
    assert {Path(f["path"]).name for f in doc["findings"]} == {"b.py"}
    code, _, message = run(capsys, since="no-such-ref")
    assert code == 2 and message.startswith("phasegate: git rev-parse")


def test_bad_lint_paths_is_could_not_lint(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "phasegate.toml").write_text("lint_paths = 3\n")
    code, _, message = run(capsys)
    assert code == 2 and "lint_paths must be" in message


def test_sarif_for_github_code_scanning(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "db" / "versions" / "b.py").write_text(UNSAFE)
    out_file = project / "reports" / "lint.sarif"
    code, summary, _ = run(capsys, format="sarif", output=str(out_file))
    assert code == 1 and "written to" in summary
    doc = json.loads(out_file.read_text())
    assert doc["version"] == "2.1.0"
    run_ = doc["runs"][0]
    assert [r["id"] for r in run_["tool"]["driver"]["rules"]] == list(RULES)
    results = run_["results"]
    assert {r["ruleId"] for r in results} == {"PG001", "PG011"}
    loc = results[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "db/versions/b.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 7
    assert all(run_["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_every_format_renders_and_a_bad_one_is_exit_2(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rev = tmp_path / "b.py"
    rev.write_text(UNSAFE.replace('"ix"', '"ix[/bold]"'))  # a name Rich must not read as markup
    findings = lint_paths([rev])
    for fmt in ("json", "junit", "sarif"):
        assert render_findings(findings, fmt, 1)
    assert "ix[/bold]" in findings_table(findings, 1)  # the CLI draws the table
    code, _, message = run(capsys, paths=str(rev), format="xml")
    assert code == 2 and "sarif" in message
