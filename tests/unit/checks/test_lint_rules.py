"""Every lint rule: one revision that breaks it, one that does the same thing safely."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from checks.lint import RULES, default_paths, lint_paths

HEADER = '''
from alembic import op
import sqlalchemy as sa
from migrations import safe_ddl

revision = "x"
down_revision = None
phase = "{phase}"
'''


def lint(tmp_path: Path, upgrade: str, *, downgrade: str = "pass", phase: str = "expand") -> list[str]:
    body = HEADER.format(phase=phase) + "\n\ndef upgrade():\n" + textwrap.indent(
        textwrap.dedent(upgrade).strip(), "    ") + "\n\n\ndef downgrade():\n" + textwrap.indent(
        textwrap.dedent(downgrade).strip(), "    ") + "\n"
    path = tmp_path / "rev.py"
    path.write_text(body)
    return [f.rule_id for f in lint_paths([path])]


# (rule, unsafe upgrade body, safe upgrade body doing the same job)
CASES = [
    ("PG001", 'op.create_index("ix_a", "background_job", ["type"])',
     'safe_ddl.create_index_concurrently("ix_a", "background_job", "type")'),
    ("PG001", 'op.execute("CREATE INDEX ix_a ON background_job (type)")',
     'op.create_table("t", sa.Column("a", sa.Text))\nop.create_index("ix_a", "t", ["a"])'),
    ("PG002", 'safe_ddl.execute("DROP INDEX ix_old")',
     'safe_ddl.drop_index_concurrently("ix_old")'),
    ("PG003", 'op.execute("SET lock_timeout = 1000")\n'
              'op.execute("CREATE INDEX CONCURRENTLY ix_a ON background_job (type)")',
     'op.execute("SET lock_timeout = 1000")\nwith op.get_context().autocommit_block():\n'
     '    op.execute("CREATE INDEX CONCURRENTLY ix_a ON background_job (type)")'),
    ("PG004", 'safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT ck CHECK (attempts >= 0)")',
     'safe_ddl.add_constraint_not_valid("background_job", "ck", "CHECK (attempts >= 0)")'),
    ("PG004", 'op.create_foreign_key("fk", "a_table", "background_job", ["job_id"], ["id"])',
     'op.create_foreign_key("fk", "a_table", "background_job", ["job_id"], ["id"],\n'
     '                      postgresql_not_valid=True)\nop.execute("SET lock_timeout = 100")'),
    ("PG005", 'safe_ddl.execute("ALTER TABLE t2 ADD CONSTRAINT c CHECK (a > 0) NOT VALID")\n'
              'safe_ddl.execute("ALTER TABLE t2 VALIDATE CONSTRAINT c")',
     'safe_ddl.add_constraint_not_valid("t2", "c", "CHECK (a > 0)")\n'
     'safe_ddl.validate_constraint("t2", "c")'),
    ("PG006", 'op.add_column("background_job", sa.Column("x", sa.Text, nullable=False))',
     'op.add_column("background_job", sa.Column("x", sa.Text, nullable=False, server_default="a"))'),
    ("PG007", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN u uuid DEFAULT gen_random_uuid()")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN u timestamptz DEFAULT now()")'),
    ("PG008", 'op.alter_column("background_job", "attempts", type_=sa.BigInteger)',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN attempts_big bigint")'),
    ("PG009", 'safe_ddl.execute("ALTER TABLE background_job RENAME COLUMN type TO kind")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN kind text")'),
    ("PG009", 'op.rename_table("background_job", "jobs")',
     'op.execute("CREATE VIEW jobs AS SELECT * FROM background_job")'),
    ("PG011", 'op.execute("ALTER TABLE background_job ADD COLUMN note text")',
     'op.execute("SET LOCAL lock_timeout = \'2s\'")\n'
     'op.execute("ALTER TABLE background_job ADD COLUMN note text")'),
    ("PG011", 'op.execute("CREATE TRIGGER tr BEFORE UPDATE ON background_job '
              'FOR EACH ROW EXECUTE FUNCTION f()")',
     'safe_ddl.execute("CREATE TRIGGER tr BEFORE UPDATE ON background_job '
     'FOR EACH ROW EXECUTE FUNCTION f()")'),
    ("PG012", 'op.alter_column("background_job", "type", nullable=False)',
     'safe_ddl.add_constraint_not_valid("background_job", "nn", "CHECK (type IS NOT NULL)")'),
    ("PG013", 'safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT u UNIQUE (type)")',
     'safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT u UNIQUE USING INDEX ix_u")'),
    ("PG014", 'op.create_table("t", sa.Column("at", sa.DateTime()))',
     'op.create_table("t", sa.Column("at", sa.DateTime(timezone=True)))'),
    ("PG015", 'op.execute("VACUUM FULL background_job")',
     'with op.get_context().autocommit_block():\n    op.execute("VACUUM background_job")'),
    ("PG015", 'safe_ddl.execute("REINDEX TABLE background_job")',
     'safe_ddl.execute("REINDEX (CONCURRENTLY) TABLE background_job")'),
    ("PG016", 'safe_ddl.execute("TRUNCATE background_job")',
     'safe_ddl.execute("DELETE FROM background_job WHERE id IN (SELECT id FROM background_job LIMIT 10)")'),
    ("PG017", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN n int '
              'GENERATED ALWAYS AS (attempts + 1) STORED")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN n int")'),
    ("PG018", 'op.execute(f"ALTER TABLE {runtime_name()} ADD COLUMN c text")',
     'op.execute("ALTER TABLE background_job ADD COLUMN c text")'),
    # ---- issue 15: what the linter did not recognise, and the new rules
    ("PG003", 'op.execute("VACUUM background_job")',
     'with op.get_context().autocommit_block():\n    op.execute("VACUUM background_job")'),
    ("PG003", 'op.execute("REINDEX (CONCURRENTLY) TABLE background_job")',
     'with op.get_context().autocommit_block():\n'
     '    op.execute("REINDEX (CONCURRENTLY) TABLE background_job")'),
    ("PG003", 'with op.get_context().autocommit_block():\n'
              '    op.execute("CREATE INDEX CONCURRENTLY a ON background_job (type); '
              'CREATE INDEX CONCURRENTLY b ON background_job (status)")',
     'with op.get_context().autocommit_block():\n'
     '    op.execute("CREATE INDEX CONCURRENTLY a ON background_job (type)")\n'
     '    op.execute("CREATE INDEX CONCURRENTLY b ON background_job (status)")'),
    ("PG004", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN n int CHECK (n > 0)")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN n int")\n'
     'safe_ddl.add_constraint_not_valid("background_job", "ck_n", "CHECK (n > 0)")'),
    ("PG004", 'safe_ddl.execute("ALTER DOMAIN positive ADD CONSTRAINT p CHECK (VALUE > 0)")',
     'safe_ddl.execute("ALTER DOMAIN positive ADD CONSTRAINT p CHECK (VALUE > 0) NOT VALID")'),
    ("PG004", 'op.add_column("background_job", sa.Column("u", sa.BigInteger, sa.ForeignKey("users.id")))',
     'op.add_column("background_job", sa.Column("u", sa.BigInteger))\n'
     'op.create_foreign_key("fk_u", "background_job", "users", ["u"], ["id"], postgresql_not_valid=True)'),
    ("PG007", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN u uuid DEFAULT uuid_generate_v1mc()")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN u uuid")\n'
     'safe_ddl.execute("ALTER TABLE background_job ALTER COLUMN u SET DEFAULT gen_random_uuid()")'),
    ("PG007", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN c text DEFAULT make_code()")',
     'op.execute("CREATE FUNCTION make_code() RETURNS text IMMUTABLE LANGUAGE sql AS \'SELECT 1\'")\n'
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN c text DEFAULT make_code()")'),
    ("PG007", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN seq bigserial")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN seq bigint")'),
    ("PG007", 'op.add_column("background_job", sa.Column("n", sa.BigInteger, sa.Identity()))',
     'op.create_table("t", sa.Column("n", sa.BigInteger, sa.Identity()))'),
    ("PG009", 'op.execute("ALTER SCHEMA public RENAME TO app")', 'op.execute("CREATE SCHEMA app")'),
    ("PG009", 'op.execute("ALTER TYPE background_job_status RENAME VALUE \'FAILED\' TO \'ERRORED\'")',
     'op.execute("ALTER TYPE background_job_status ADD VALUE \'ERRORED\'")'),
    ("PG012", 'safe_ddl.add_constraint_not_valid("background_job", "nn", "CHECK (type IS NOT NULL)")\n'
              'safe_ddl.execute("ALTER TABLE background_job ALTER COLUMN type SET NOT NULL")',
     'safe_ddl.add_constraint_not_valid("background_job", "nn", "CHECK (type IS NOT NULL)")\n'
     'safe_ddl.validate_constraint("background_job", "nn")\n'
     'safe_ddl.execute("ALTER TABLE background_job ALTER COLUMN type SET NOT NULL")\n'
     'safe_ddl.execute("ALTER TABLE background_job DROP CONSTRAINT nn")'),
    ("PG013", 'op.add_column("background_job", sa.Column("e", sa.Text, unique=True))',
     'op.add_column("background_job", sa.Column("e", sa.Text))\n'
     'safe_ddl.create_index_concurrently("uq_e", "background_job", "e", unique=True)\n'
     'safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT uq_e UNIQUE USING INDEX uq_e")'),
    ("PG013", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN k bigint PRIMARY KEY")',
     'op.create_table("t", sa.Column("k", sa.BigInteger, primary_key=True))'),
    ("PG015", 'with op.get_context().autocommit_block():\n    op.execute("VACUUM (FULL) background_job")',
     'with op.get_context().autocommit_block():\n    op.execute("VACUUM (FULL false) background_job")'),
    ("PG015", 'safe_ddl.execute("REINDEX (CONCURRENTLY false) INDEX ix_a")',
     'with op.get_context().autocommit_block():\n    op.execute("REINDEX (CONCURRENTLY) INDEX ix_a")'),
    ("PG015", 'safe_ddl.execute("CLUSTER background_job USING pk_background_job")',
     'safe_ddl.execute("ANALYZE background_job")'),
    ("PG015", 'safe_ddl.execute("LOCK TABLE background_job IN SHARE MODE")',
     'op.execute("LOCK TABLE background_job IN ACCESS SHARE MODE")'),
    ("PG015", 'safe_ddl.execute("REFRESH MATERIALIZED VIEW job_stats")',
     'safe_ddl.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY job_stats")'),
    ("PG017", 'op.add_column("background_job", sa.Column("g", sa.Integer, sa.Computed("attempts + 1")))',
     'op.add_column("background_job", sa.Column("g", sa.Integer))'),
    ("PG018", 'op.execute("DO $$ BEGIN EXECUTE \'DROP TABLE \' || current_setting(\'x.t\'); END $$")',
     'op.execute("DO $$ BEGIN EXECUTE \'CREATE TABLE t2 (a int)\'; END $$")'),
    ("PG019", 'op.execute("ALTER TABL background_job ADD c int")',
     'safe_ddl.execute("ALTER TABLE background_job ADD c int")'),
    ("PG020", 'op.execute("COMMIT")\nop.execute("SET lock_timeout = 1000")\n'
              'op.execute("CREATE INDEX CONCURRENTLY ix ON background_job (type)")',
     'with op.get_context().autocommit_block():\n    op.execute("SET lock_timeout = 1000")\n'
     '    op.execute("CREATE INDEX CONCURRENTLY ix ON background_job (type)")'),
    ("PG021", 'op.execute("DROP DATABASE legacy")', 'op.execute("SELECT 1")'),
    ("PG022", 'safe_ddl.execute("ALTER TABLE background_function_run DETACH PARTITION run_2020")',
     'with op.get_context().autocommit_block():\n    op.execute("SET lock_timeout = 1000")\n'
     '    op.execute("ALTER TABLE background_function_run DETACH PARTITION run_2020 CONCURRENTLY")'),
    ("PG023", 'safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT ex '
              'EXCLUDE USING gist (run_at WITH =)")',
     'op.execute("CREATE TABLE slot (at tstzrange, EXCLUDE USING gist (at WITH &&))")'),
    ("PG024", 'safe_ddl.execute("ALTER TABLE background_job SET UNLOGGED")',
     'safe_ddl.execute("ALTER TABLE background_job SET (fillfactor = 90)")'),
    ("PG024", 'safe_ddl.execute("ALTER TABLE background_job SET LOGGED")',
     'op.execute("CREATE UNLOGGED TABLE scratch (a int)")'),
    ("PG025", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN note text")\n'
              'op.execute("UPDATE background_job SET note = \'\' WHERE id < 1000")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN note text")\n'
     'with op.get_context().autocommit_block():\n'
     '    op.execute("UPDATE background_job SET note = \'\' WHERE id < 1000")'),
    ("PG026", 'op.execute("DELETE FROM background_job")',
     'op.execute("DELETE FROM background_job WHERE id IN (SELECT id FROM background_job LIMIT 10)")'),
    ("PG027", 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN meta json")',
     'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN meta jsonb")'),
    ("PG027", 'safe_ddl.execute("ALTER TABLE background_job SET SCHEMA archive")',
     'op.execute("CREATE VIEW archive.background_job AS SELECT * FROM public.background_job")'),
    ("PG027", 'op.alter_column("background_job", "last_error", nullable=True)',
     'op.alter_column("background_job", "last_error", comment="why the last attempt failed")'),
]


@pytest.mark.parametrize(("rule", "unsafe", "safe"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_fails_unsafe_and_passes_safe(tmp_path: Path, rule: str, unsafe: str, safe: str) -> None:
    assert rule in lint(tmp_path, unsafe)
    safe_findings = lint(tmp_path, safe)
    assert rule not in safe_findings, safe_findings


def test_pg018_passes_when_the_fstring_uses_module_constants(tmp_path: Path) -> None:
    path = tmp_path / "rev.py"
    path.write_text(HEADER.format(phase="expand") + 'TABLE = "background_job"\n\n'
                    'def upgrade():\n    safe_ddl.execute(f"ALTER TABLE {TABLE} ADD COLUMN c text")\n')
    assert [f.rule_id for f in lint_paths([path])] == []


def test_every_rule_has_a_case() -> None:
    covered = {c[0] for c in CASES} | {"PG000", "PG010"}
    assert covered == set(RULES)
    assert all(r.why and r.instead and r.title for r in RULES.values())


def test_pg010_drop_only_in_contract_upgrades(tmp_path: Path) -> None:
    drop = 'safe_ddl.execute("ALTER TABLE background_job DROP COLUMN legacy")'
    assert "PG010" in lint(tmp_path, drop, phase="expand")
    assert "PG010" in lint(tmp_path, 'safe_ddl.execute("DROP TABLE old_jobs")', phase="expand")
    assert "PG010" in lint(tmp_path, 'op.drop_column("background_job", "legacy")', phase="expand")
    assert "PG010" not in lint(tmp_path, drop, phase="contract")
    # an expand revision's downgrade legitimately drops what its upgrade added
    assert lint(tmp_path, 'safe_ddl.execute("ALTER TABLE background_job ADD COLUMN c text")',
                downgrade=drop) == []


def test_downgrade_is_linted_for_lock_safety(tmp_path: Path) -> None:
    found = lint(tmp_path, "pass", downgrade='op.execute("ALTER TABLE background_job DROP COLUMN c")')
    assert found == ["PG011"]


def test_downgrade_may_drop_the_tables_its_upgrade_created(tmp_path: Path) -> None:
    assert lint(tmp_path, 'op.create_table("t", sa.Column("a", sa.Text))',
                downgrade='op.drop_table("t")') == []
    assert lint(tmp_path, "pass", downgrade='op.drop_table("t")') == ["PG011"]


def test_suppression_needs_a_reason(tmp_path: Path) -> None:
    unsafe = 'op.create_index("ix_a", "background_job", ["type"])'
    with_reason = ("# phasegate-lint: ignore[PG001, PG011] reason: table is empty in every env\n"
                   + unsafe)
    assert lint(tmp_path, with_reason) == []
    assert sorted(lint(tmp_path, "# phasegate-lint: ignore[PG001]\n" + unsafe)) == \
        ["PG000", "PG001", "PG011"]
    assert "PG000" in lint(tmp_path, "# phasegate-lint: ignore[PG999] reason: typo\n" + unsafe)


def test_suppression_on_the_same_line_covers_only_its_rule(tmp_path: Path) -> None:
    unsafe = ('op.create_index("ix_a", "background_job", ["type"])  '
              '# phasegate-lint: ignore[PG001] reason: built before traffic')
    assert lint(tmp_path, unsafe) == ["PG011"]


def test_sql_files_are_linted_with_pglast(tmp_path: Path) -> None:
    path = tmp_path / "raw.sql"
    path.write_text("SET lock_timeout = '2s';\n\nCREATE INDEX ix_b ON background_job (type);\n"
                    "-- phasegate-lint: ignore[PG002] reason: index unused for a year\n"
                    "DROP INDEX ix_c;\n")
    findings = lint_paths([path])
    assert [(f.rule_id, f.line) for f in findings] == [("PG001", 3)]


def test_the_shipped_revisions_lint_clean() -> None:
    paths = default_paths()
    assert len(paths) >= 10
    assert lint_paths(paths) == []


def test_p0011_needs_its_suppression(tmp_path: Path) -> None:
    """p0011 runs its grants through a DO block that EXECUTEs format('%s ...'): the linter
    cannot know what it runs, so without the suppression (and its reason) it says "cannot
    verify" (PG018)."""
    src = next(p for p in default_paths() if p.name.startswith("p0011"))
    text = re.sub(r"  # phasegate-lint: ignore\[PG018\][^\n]*", "", src.read_text())
    copy = tmp_path / src.name
    copy.write_text(text)
    assert [f.rule_id for f in lint_paths([copy])] == ["PG018"]


def test_the_readme_lists_every_rule_under_its_kind() -> None:
    readme = (Path(__file__).resolve().parents[3] / "checks" / "README.md").read_text()
    section = readme.split("### Rules", 1)[1].split("### Compared with squawk", 1)[0]
    kinds = {"Locking": "locking", "Compatibility": "compatibility", "Verification": "verification"}
    listed: dict[str, tuple[str, str]] = {}
    kind = ""
    for line in section.splitlines():
        for head, name in kinds.items():
            if line.startswith(head + " ("):
                kind = name
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| PG") and len(cells) == 2:
            listed[cells[0]] = (cells[1], kind)
    for rule in RULES.values():
        if rule.kind == "hygiene":
            assert f"{rule.rule_id} {rule.title}" in section
            continue
        title, kind = listed[rule.rule_id]
        assert title == rule.title + (" (warning)" if rule.severity == "warning" else ""), rule.rule_id
        assert kind == rule.kind, rule.rule_id
    assert set(listed) | {r.rule_id for r in RULES.values() if r.kind == "hygiene"} == set(RULES)
