"""Transaction boundaries as written: BEGIN/COMMIT in .sql files (psql runs every other
statement in autocommit), Alembic's autocommit_block, and transaction_per_migration."""

from __future__ import annotations

import textwrap
from pathlib import Path

from checks.lint import lint_paths


def sql(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    path = tmp_path / "m.sql"
    path.write_text(textwrap.dedent(text).lstrip())
    return [(f.rule_id, f.line) for f in lint_paths([path])]


def test_autocommit_recipes_in_a_sql_file_pass(tmp_path: Path) -> None:
    assert sql(tmp_path, """
        SET lock_timeout = '2s';
        CREATE INDEX CONCURRENTLY ix_a ON background_job (type);
        ALTER TABLE background_job ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID;
        ALTER TABLE background_job VALIDATE CONSTRAINT fk;
        """) == []


def test_explicit_transactions_are_honoured(tmp_path: Path) -> None:
    assert sql(tmp_path, """
        BEGIN;
        SET LOCAL lock_timeout = '2s';
        ALTER TABLE background_job ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID;
        COMMIT;
        BEGIN;
        SET LOCAL lock_timeout = '2s';
        ALTER TABLE background_job VALIDATE CONSTRAINT fk;
        COMMIT;
        """) == []
    assert ("PG005", 4) in sql(tmp_path, """
        BEGIN;
        SET LOCAL lock_timeout = '2s';
        ALTER TABLE background_job ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID;
        ALTER TABLE background_job VALIDATE CONSTRAINT fk;
        COMMIT;
        """)
    assert ("PG003", 2) in sql(tmp_path, "BEGIN;\nCREATE INDEX CONCURRENTLY ix ON t (a);\nCOMMIT;\n")


def test_set_local_outside_a_transaction_block_does_nothing(tmp_path: Path) -> None:
    assert sql(tmp_path, "SET LOCAL lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c int;\n") == \
        [("PG011", 2)]
    assert sql(tmp_path, "SELECT set_config('lock_timeout', '2s', false);\n"
                         "ALTER TABLE t ADD COLUMN c int;\n") == []
    assert sql(tmp_path, "SET lock_timeout = '2s';\nRESET lock_timeout;\n"
                         "ALTER TABLE t ADD COLUMN c int;\n") == [("PG011", 3)]


def test_transaction_control_that_does_not_do_what_it_seems(tmp_path: Path) -> None:
    assert sql(tmp_path, "BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;\n") == [("PG020", 2)]
    assert sql(tmp_path, "BEGIN;\nSELECT 1;\nCOMMIT;\nCOMMIT;\n") == [("PG020", 4)]
    assert sql(tmp_path, "SELECT 1;\nBEGIN;\nCREATE TABLE x (a int);\n") == [("PG020", 2)]
    assert sql(tmp_path, "BEGIN;\nSELECT 1;\nCOMMIT;\nSTART TRANSACTION;\nSELECT 2;\nEND;\n") == []


def test_a_data_change_after_ddl_in_the_same_transaction(tmp_path: Path) -> None:
    found = sql(tmp_path, """
        BEGIN;
        SET LOCAL lock_timeout = '2s';
        ALTER TABLE background_job ADD COLUMN note text;
        UPDATE background_job SET note = '' WHERE id < 1000;
        COMMIT;
        UPDATE background_job SET note = '' WHERE id < 2000;
        """)
    assert found == [("PG025", 4)]


def test_alembic_autocommit_block_ends_the_transaction(tmp_path: Path) -> None:
    path = tmp_path / "rev.py"
    path.write_text(textwrap.dedent("""
        from alembic import op
        from migrations import safe_ddl
        phase = "expand"

        def upgrade():
            safe_ddl.execute("ALTER TABLE background_job ADD CONSTRAINT c CHECK (a > 0) NOT VALID")
            with op.get_context().autocommit_block():
                op.execute("SET lock_timeout = '2s'")
                op.execute("ALTER TABLE background_job VALIDATE CONSTRAINT c")
    """))
    assert lint_paths([path]) == []


def _alembic_project(tmp_path: Path, per_migration: bool) -> Path:
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text(
        "from alembic import context\n\ndef run(conn):\n"
        f"    context.configure(connection=conn, transaction_per_migration={per_migration})\n")
    head = "from alembic import op\nfrom migrations import safe_ddl\nphase = 'expand'\n"
    (tmp_path / "versions" / "b.py").write_text(
        head + "revision = 'b'\ndown_revision = 'a'\n\ndef upgrade():\n"  # noqa: S608 - test input
        "    op.execute(\"UPDATE background_job SET note = '' WHERE id < 10\")\n")
    (tmp_path / "versions" / "a.py").write_text(
        head + "revision = 'a'\ndown_revision = None\n\ndef upgrade():\n"
        "    safe_ddl.execute('ALTER TABLE background_job ADD COLUMN note text')\n")
    return tmp_path / "versions"


def test_without_transaction_per_migration_the_lock_carries_to_the_next_revision(tmp_path: Path) -> None:
    found = lint_paths([_alembic_project(tmp_path, per_migration=False)])
    assert [(Path(f.path).name, f.rule_id) for f in found] == [("b.py", "PG025")]
    assert "a.py" in found[0].message and "transaction_per_migration" in found[0].message


def test_with_transaction_per_migration_each_revision_commits(tmp_path: Path) -> None:
    assert lint_paths([_alembic_project(tmp_path, per_migration=True)]) == []


def test_set_not_null_after_a_check_validated_in_an_earlier_revision(tmp_path: Path) -> None:
    versions = _alembic_project(tmp_path, per_migration=True)
    head = "from migrations import safe_ddl\nphase = 'expand'\n"
    (versions / "a.py").write_text(
        head + "revision = 'a'\ndown_revision = None\n\ndef upgrade():\n"
        "    safe_ddl.add_constraint_not_valid('background_job', 'nn', 'CHECK (note IS NOT NULL)')\n"
        "    safe_ddl.validate_constraint('background_job', 'nn')\n")
    (versions / "b.py").write_text(
        head + "revision = 'b'\ndown_revision = 'a'\n\ndef upgrade():\n"
        "    safe_ddl.execute('ALTER TABLE background_job ALTER COLUMN note SET NOT NULL')\n")
    assert lint_paths([versions]) == []
    assert [f.rule_id for f in lint_paths([versions / "b.py", versions / "a.py"])] == []
    (versions / "a.py").write_text(head + "revision = 'a'\ndown_revision = None\n")
    assert [f.rule_id for f in lint_paths([versions])] == ["PG012"]
