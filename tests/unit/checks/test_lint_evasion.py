"""No way around the linter: every way a revision can reach the server is followed, and
what cannot be followed is "cannot verify" (PG018), an error, never a pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from checks.lint import Finding, lint_paths

HEAD = ('import sqlalchemy as sa\nfrom migrations import safe_ddl\n'
        'revision = "x"\ndown_revision = None\nphase = "expand"\n')
DROP = "ALTER TABLE background_job DROP COLUMN legacy"


def findings(tmp_path: Path, body: str, *, imports: str = "from alembic import op\n",
             files: dict[str, str] | None = None) -> list[Finding]:
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    path = tmp_path / "rev.py"
    path.write_text(imports + HEAD + textwrap.dedent(body))
    return lint_paths([path])


def rules(found: list[Finding]) -> set[str]:
    return {f.rule_id for f in found}


# (name, imports, body): each drops a column in an expand revision (PG010) by another route
ROUTES = [
    ("aliased op", "from alembic import op as o\n", f"def upgrade():\n    o.execute('{DROP}')\n"),
    ("import alembic", "import alembic\n", f"def upgrade():\n    alembic.op.execute('{DROP}')\n"),
    ("op.execute imported", "from alembic.op import execute as run\n",
     f"def upgrade():\n    run('{DROP}')\n"),
    ("get_bind().execute(sa.text())", "from alembic import op\n",
     f"def upgrade():\n    op.get_bind().execute(sa.text('{DROP}'))\n"),
    ("connection variable, text alias", "from alembic import op\nfrom sqlalchemy import text as T\n",
     f"def upgrade():\n    conn = op.get_bind()\n    conn.execute(T('{DROP}'))\n"),
    ("context connection, driver SQL", "from alembic import op\n",
     f"def upgrade():\n    op.get_context().connection.exec_driver_sql('{DROP}')\n"),
    ("DBAPI cursor", "from alembic import op\n",
     f"def upgrade():\n    op.get_bind().connection.cursor().execute('{DROP}')\n"),
    ("module helper", "from alembic import op\n",
     f"def _ddl(sql):\n    op.execute(sql)\n\ndef upgrade():\n    _ddl('{DROP}')\n"),
    ("nested helper via with_lock_retry", "from alembic import op\n",
     "def upgrade():\n    conn = op.get_bind()\n    def work():\n"
     f"        conn.execute(sa.text('{DROP}'))\n    safe_ddl.with_lock_retry(conn, work, what='x')\n"),
    ("joined string", "from alembic import op\n",
     "PARTS = ['ALTER TABLE', 'background_job', 'DROP COLUMN', 'legacy']\n"
     "def upgrade():\n    op.execute(' '.join(PARTS))\n"),
    ("loop over constants", "from alembic import op\n",
     "COLS = ('legacy',)\ndef upgrade():\n    for c in COLS:\n"
     "        op.execute(f'ALTER TABLE background_job DROP COLUMN {c}')\n"),
    ("percent format and helper return", "from alembic import op\n",
     "def sql(t):\n    return 'ALTER TABLE %s DROP COLUMN legacy' % t\n"
     "def upgrade():\n    op.execute(sql('background_job'))\n"),
    ("getattr with a constant", "from alembic import op\n",
     f"def upgrade():\n    getattr(op, 'execute')('{DROP}')\n"),
    ("batch op", "from alembic import op\n",
     "def upgrade():\n    with op.batch_alter_table('background_job') as b:\n"
     "        b.drop_column('legacy')\n"),
    ("DO block with a constant EXECUTE", "from alembic import op\n",
     f"def upgrade():\n    op.execute(\"DO $$ BEGIN EXECUTE '{DROP}'; END $$\")\n"),
]


@pytest.mark.parametrize(("imports", "body"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
def test_every_route_to_the_server_is_followed(tmp_path: Path, imports: str, body: str) -> None:
    assert "PG010" in rules(findings(tmp_path, body, imports=imports))


def test_a_helper_in_a_project_module_is_followed(tmp_path: Path) -> None:
    found = findings(tmp_path, "from helpers.ddl import drop\n\ndef upgrade():\n    drop('legacy')\n",
                     files={"helpers/__init__.py": "",
                            "helpers/ddl.py": "from alembic import op\n\ndef drop(c):\n"
                                              "    op.execute(f'ALTER TABLE background_job DROP COLUMN {c}')\n"})
    assert "PG010" in rules(found)
    assert {f.line for f in found if f.rule_id == "PG010"} == {10}  # reported at the call


# What cannot be resolved statically: "cannot verify", an error that names the reason.
UNVERIFIABLE = [
    ("computed string", "import os\ndef upgrade():\n    op.execute('DROP TABLE ' + os.environ['T'])\n",
     "os.environ"),
    ("DO block with dynamic EXECUTE",
     "def upgrade():\n    op.execute(\"DO $$ BEGIN EXECUTE 'DROP TABLE ' || current_setting('x.t'); "
     "END $$\")\n", "EXECUTE"),
    ("exec()", "def upgrade():\n    exec(\"op.execute('DROP TABLE t')\")\n", "exec()"),
    ("connection handed to unknown code", "import mylib\ndef upgrade():\n    mylib.run(op.get_bind())\n",
     "handed the connection"),
    ("execute on an object the linter cannot follow",
     "import importlib\ndef upgrade():\n    importlib.import_module('alembic').op.execute('DROP TABLE t')\n",
     "importlib"),
    ("SQLAlchemy Core statement",
     "def upgrade():\n    t = sa.table('t', sa.column('c'))\n    op.execute(t.update().values(c=1))\n",
     "built at run time"),
    ("subprocess psql", "import subprocess\ndef upgrade():\n    subprocess.run(['psql', '-c', 'DROP TABLE t'])\n",
     "subprocess"),
    ("unknown op", "def upgrade():\n    op.invoke(object())\n", "op.invoke"),
    ("upgrade built at import time", "import mylib\nupgrade = mylib.make_upgrade()\n",
     "upgrade is"),
    ("getattr with a computed name",
     "import os\ndef upgrade():\n    getattr(op, os.environ['M'])('DROP TABLE t')\n", "getattr"),
]


@pytest.mark.parametrize(("body", "reason"), [u[1:] for u in UNVERIFIABLE], ids=[u[0] for u in UNVERIFIABLE])
def test_what_cannot_be_resolved_is_an_error_not_a_pass(tmp_path: Path, body: str, reason: str) -> None:
    found = [f for f in findings(tmp_path, body) if f.rule_id == "PG018"]
    assert found and found[0].severity == "error"
    assert found[0].message.startswith("cannot verify: ")
    assert found[0].message.endswith("trace it or suppress with a reason")
    assert any(reason in f.message for f in found), [f.message for f in found]


def test_harmless_runtime_values_are_not_flagged(tmp_path: Path) -> None:
    body = ("import json\ndef upgrade():\n    conn = op.get_bind()\n"
            "    spec = json.dumps({'a': 1})\n"
            "    conn.execute(sa.text(\"SELECT set_config('x.spec', :spec, true)\"), {'spec': spec})\n")
    assert findings(tmp_path, body) == []


def test_a_revision_that_computes_without_end_is_cut_off(tmp_path: Path) -> None:
    body = ("def f(n):\n    return f(n + 1)\n\ndef upgrade():\n    f(0)\n"
            "    for i in range(10000):\n        for j in range(10000):\n            x = i + j\n")
    found = findings(tmp_path, body)
    assert rules(found) == {"PG018"}
    assert "computes more than the linter follows" in found[0].message
