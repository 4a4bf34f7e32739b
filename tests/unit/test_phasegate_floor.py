"""The neutral floor every package imports: one error root, masking, URL forms, durations,
JUnit XML and the actor. It must import no other phasegate package, so ``infra/``,
``migrations/``, ``checks/`` and ``rollout/`` can use it without loading the ledger."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from phasegate import errors, junit
from phasegate.actor import resolve_actor
from phasegate.durations import parse_duration
from phasegate.text import first_line
from phasegate.urls import libpq_dsn, parse_url, sqlalchemy_url

FLOOR = Path(errors.__file__).resolve().parent
KIT = {"ledger", "rollout", "checks", "infra", "migrations", "cli", "demo", "tasks"}


def test_the_floor_imports_no_other_kit_package() -> None:
    for path in FLOOR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in KIT, f"{path.name} imports {name}"


def test_every_expected_error_derives_from_the_root() -> None:
    from infra.ephemeral import ServerUnavailable
    from ledger.errors import LedgerError
    from migrations.safe_ddl import IrreversibleMigration
    from rollout.errors import RolloutError

    for cls in (ServerUnavailable, IrreversibleMigration, LedgerError, RolloutError, errors.ConfigError):
        assert issubclass(cls, errors.PhasegateError), cls


def test_an_error_without_text_says_its_docstring() -> None:
    assert str(errors.ServerUnavailable()).startswith("No provider could start the server")


@pytest.mark.parametrize("text, first", [
    ("boom", "boom"),
    ("\n  \nreal line\nDETAIL: more", "real line"),
    ("", "ValueError"),
])
def test_first_line(text: str, first: str) -> None:
    assert first_line(ValueError(text)) == first


@pytest.mark.parametrize("given, alchemy, libpq", [
    ("postgresql://u@h/db", "postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db", "postgres://u@h/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db", "postgresql://u@h/db"),
])
def test_url_forms(given: str, alchemy: str, libpq: str) -> None:
    assert sqlalchemy_url(given) == alchemy
    assert libpq_dsn(given) == libpq


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration(" 1.5h ") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)
    with pytest.raises(errors.ConfigError, match="--older-than must look like"):
        parse_duration("abc", "--older-than")
    with pytest.raises(errors.ConfigError, match="at most 36500 days"):
        parse_duration("99999999999w", "--older-than")


def test_actor_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASEGATE_ACTOR", "from-env")
    assert resolve_actor("given") == "given"
    assert resolve_actor(None) == "from-env"
    monkeypatch.delenv("PHASEGATE_ACTOR")
    monkeypatch.setenv("USER", "login")
    monkeypatch.setenv("LOGNAME", "login")
    assert resolve_actor(None) == "login"
    assert resolve_actor("x\x1b[31m" + "y" * 100) == "x\\x1b[31m" + "y" * 55


def test_junit_counts_cases_and_failures() -> None:
    doc = junit.render("suite", [
        junit.Case("suite", "ok", 0.5, details="pass: fine"),
        junit.Case("suite", "bad", 0.25, failure="broke\nsecond line", failure_type="error",
                   details="evidence"),
    ])
    suite = ET.fromstring(doc).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("time")) == ("2", "1", "0.750")
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is None and cases[0].findtext("system-out") == "pass: fine"
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "broke second line"
    assert failure.text == "evidence" and failure.get("type") == "error"


def test_verify_report_is_junit() -> None:
    from rollout.verify import Step
    from rollout.verify import junit as verify_junit

    steps = [Step("expand", True, 1.0, "", [{"check_id": "schema_objects", "verdict": "pass",
                                               "summary": "all present", "duration_ms": 12}]),
             Step("dual_write", False, 2.0, "gate failed (parity)", [])]
    suite = ET.fromstring(verify_junit(steps)).find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "1"
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == ["expand", "schema_objects", "dual_write"]


# Passwords that defeat pattern masking or split differently in different clients.
HARD_PASSWORDS = ["p@ss:w/rd#1 x", "Пароль-секрет", "colon:in:it", "sp ace-and-more"]


@pytest.mark.parametrize("password", HARD_PASSWORDS)
def test_a_remembered_password_is_masked_by_value(password: str) -> None:
    from urllib.parse import quote

    from phasegate.text import mask_secrets

    url = f"postgresql://app:{quote(password, safe='')}@db.example:5432/prod"
    parsed = parse_url(url)
    assert parsed.password == password and parsed.user == "app"
    for text in (f"connection to server failed for {password}",
                 f"FATAL: password authentication failed; tried {quote(password, safe='')}",
                 url):
        masked = mask_secrets(text)
        assert password not in masked and quote(password, safe="") not in masked, masked


@pytest.mark.parametrize("bad, says", [
    ("postgresql://app:p@ss@host/db", "@ (%40)"),
    ("postgresql://app:pa/ss@host/db", "/ (%2F)"),
    ("postgresql://app:pa ss@host/db", "a space (%20)"),
    ("postgresql://app:pa#ss@host/db", "# (%23)"),
    ("postgresql://app:100%@host/db", "%25"),
    ("redis://:pa?ss@host:6379/0", "? (%3F)"),
])
def test_ambiguous_user_information_is_refused_without_echoing_it(bad: str, says: str) -> None:
    from phasegate.text import mask_secrets

    with pytest.raises(errors.ConfigError) as info:
        parse_url(bad)
    message = str(info.value)
    assert says in message and "percent-encode" in message
    password = bad.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]
    assert password not in message
    # Refused, yet remembered: no later message can carry it either.
    assert password not in mask_secrets(f"tried {password}")


def test_a_url_without_user_information() -> None:
    parsed = parse_url("redis://127.0.0.1:6379/0")
    assert (parsed.user, parsed.password, parsed.location) == (None, None, "127.0.0.1:6379/0")
    with pytest.raises(errors.ConfigError, match="must look like scheme://"):
        parse_url("not a url")


class TestFiles:
    def test_writes_whole_files_and_replaces(self, tmp_path: Path) -> None:
        from phasegate.files import write_text_atomic

        target = tmp_path / "plans" / "prod" / "expand.md"
        write_text_atomic(target, "first")
        write_text_atomic(target, "second")
        assert target.read_text() == "second"
        assert [p.name for p in target.parent.iterdir()] == ["expand.md"]  # no temporary left

    def test_refuses_a_planted_link_and_leaves_its_target(self, tmp_path: Path) -> None:
        from phasegate.files import write_text_atomic

        victim = tmp_path / "victim"
        victim.write_text("precious")
        link = tmp_path / "expand.md"
        link.symlink_to(victim)
        with pytest.raises(errors.ConfigError, match="symbolic link"):
            write_text_atomic(link, "plan")
        assert victim.read_text() == "precious" and link.is_symlink()

    @pytest.mark.parametrize("shape, says", [
        ("dir", "is a directory"), ("under_file", "cannot be written|is a file"),
        ("device", "not a regular file"),
    ])
    def test_refuses_what_is_not_a_file(self, tmp_path: Path, shape: str, says: str) -> None:
        from phasegate.files import check_output_path

        if shape == "dir":
            path = tmp_path
        elif shape == "under_file":
            (tmp_path / "file").write_text("x")
            path = tmp_path / "file" / "report.xml"
        else:
            path = Path("/dev/full")
        with pytest.raises(errors.ConfigError, match=says):
            check_output_path(path)


def test_the_engine_refuses_to_write_a_plan_through_a_planted_link(tmp_path: Path) -> None:
    """The finding: the engine's own plan write overwrote the target of a link planted at
    ``plans/<env>/<phase>.md``. Plans need no database (``engine=None``)."""
    from rollout import plan
    from rollout.environments import Target
    from rollout.settings import Settings

    victim = tmp_path / "victim"
    victim.write_text("precious")
    plans = tmp_path / "plans" / "prod"
    plans.mkdir(parents=True)
    (plans / "expand.md").symlink_to(victim)
    target = Target("prod", "postgresql+psycopg://u@h/db", "redis://h/0", True, Settings())
    with pytest.raises(errors.ConfigError, match="symbolic link"):
        plan.write(target, plans, "expand", None)
    assert victim.read_text() == "precious" and not (plans / "expand.json").exists()
    (plans / "expand.md").unlink()
    written = plan.write(target, plans, "expand", None)
    assert [p.name for p in written] == ["expand.md", "expand.json"]
    assert written[0].read_text().startswith("# Rollback plan: expand on prod")
