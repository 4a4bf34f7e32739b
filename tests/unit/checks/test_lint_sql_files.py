"""SQL that runs SQL, and psql's own syntax, in .sql files."""

from __future__ import annotations

from pathlib import Path

from checks.lint import Finding, lint_paths

TIMEOUT = "SET lock_timeout = '2s';\n"


def lint_sql(tmp_path: Path, text: str) -> list[Finding]:
    path = tmp_path / "m.sql"
    path.write_text(text)
    return lint_paths([path])


def found(tmp_path: Path, text: str) -> list[tuple[str, int]]:
    return [(f.rule_id, f.line) for f in lint_sql(tmp_path, text)]


def test_do_blocks_are_linted_statement_by_statement(tmp_path: Path) -> None:
    assert found(tmp_path, TIMEOUT + "DO $$\nBEGIN\n  ALTER TABLE t ADD COLUMN c int NOT NULL;\n"
                                      "END $$;\n") == [("PG006", 4)]
    assert found(tmp_path, TIMEOUT + "DO $$ BEGIN EXECUTE 'ALTER TABLE t DROP COLUMN ' || "
                                      "quote_ident('c'); END $$;\n") == [("PG010", 2)]
    assert found(tmp_path, "DO $$ BEGIN ALTER TABL t; END $$;\n") == [("PG019", 1)]
    dynamic = lint_sql(tmp_path, "DO $$ BEGIN EXECUTE current_setting('x.sql'); END $$;\n")
    assert [f.rule_id for f in dynamic] == ["PG018"]
    assert "current_setting" in dynamic[0].message


def test_a_function_the_migration_creates_and_calls_is_linted_where_it_runs(tmp_path: Path) -> None:
    text = (TIMEOUT + "CREATE FUNCTION backfill() RETURNS void LANGUAGE plpgsql AS $$\n"  # noqa: S608
            "BEGIN UPDATE t SET c = 0; END $$;\n"
            "BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE t ADD COLUMN c int;\n"
            "SELECT backfill();\nCOMMIT;\n")
    assert {r for r, _ in found(tmp_path, text)} == {"PG025", "PG026"}
    assert found(tmp_path, text.replace("SELECT backfill();\n", "")) == []


def test_a_suppression_above_a_do_block_covers_its_statements(tmp_path: Path) -> None:
    text = (TIMEOUT + "-- phasegate-lint: ignore[PG006] reason: the table is empty everywhere\n"
            "DO $$\nBEGIN\n  ALTER TABLE t ADD COLUMN c int NOT NULL;\nEND $$;\n")
    assert found(tmp_path, text) == []


def test_psql_features_the_linter_cannot_see_through(tmp_path: Path) -> None:
    text = "\\i other.sql\nSELECT format('DROP TABLE %I', tablename) FROM pg_tables \\gexec\n"
    assert found(tmp_path, text) == [("PG018", 1), ("PG018", 2)]
    psql_var = lint_sql(tmp_path, TIMEOUT + "ALTER TABLE :tbl ADD COLUMN c int;\n")
    assert [(f.rule_id, f.line) for f in psql_var] == [("PG019", 2)]
    assert "psql variables" in psql_var[0].message


def test_a_contract_script_may_drop(tmp_path: Path) -> None:
    text = "-- phasegate-lint: phase=contract\n" + TIMEOUT + "ALTER TABLE t DROP COLUMN c;\n"
    assert found(tmp_path, text) == []
    assert found(tmp_path, text.replace("phase=contract", "")) == [("PG010", 3)]
