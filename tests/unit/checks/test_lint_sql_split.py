"""The .sql splitter draws statement boundaries where psql does."""

from __future__ import annotations

from checks.lint.sql_split import Chunk, Splitter


def chunks(text: str) -> list[Chunk]:
    splitter, out = Splitter(text), []
    while (chunk := splitter.next_chunk()) is not None:
        out.append(chunk)
        if chunk.meta is None and chunk.text.upper().startswith("COPY"):
            splitter.skip_copy_data()
    return out


def test_quotes_comments_and_dollar_bodies_hide_semicolons() -> None:
    text = ("-- a comment; still a comment\n"
            "SELECT 'it''s; one', E'a\\'; b', $$ ; $$, $q$ ; $q$, \"we;ird\", foo$bar;\n"
            "/* outer /* nested; */ still; */ SELECT 2;\n"
            "SELECT (1;\n2);\n")
    got = [(c.text.split("\n")[0][:12], c.line) for c in chunks(text)]
    # leading comments are not part of a statement; comments inside it are
    assert got == [("SELECT 'it''", 2), ("SELECT 2", 3), ("SELECT (1;", 4)]


def test_begin_atomic_bodies_stay_whole() -> None:
    text = ("CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
            "  SELECT CASE WHEN true THEN 1 END;\nEND;\nBEGIN;\nCOMMIT;\n")
    got = chunks(text)
    assert [c.line for c in got] == [1, 6, 7]
    assert got[0].text.endswith("END") and got[0].end_line == 5


def test_meta_commands_are_taken_out_of_the_sql() -> None:
    text = ("\\set ON_ERROR_STOP on\nCREATE INDEX ix ON t (a);\n"
            "SELECT format('x') \\gexec\n\\i other.sql\nALTER TABLE t DROP COLUMN c;\n")
    got = [(c.meta, c.text, c.line) for c in chunks(text)]
    assert got == [("set", "\\set ON_ERROR_STOP on", 1), (None, "CREATE INDEX ix ON t (a)", 2),
                   (None, "SELECT format('x')", 3), ("gexec", "\\gexec", 3),
                   ("i", "\\i other.sql", 4), (None, "ALTER TABLE t DROP COLUMN c", 5)]


def test_copy_data_is_skipped_up_to_its_terminator() -> None:
    text = "COPY t (a) FROM stdin;\n1\tit's; not SQL\n\\.\nALTER TABLE t DROP COLUMN c;\n"
    assert [(c.text, c.line) for c in chunks(text)] == [
        ("COPY t (a) FROM stdin", 1), ("ALTER TABLE t DROP COLUMN c", 4)]


def test_unterminated_input_and_carriage_returns() -> None:
    assert [c.text for c in chunks("SELECT 'open;\nDROP TABLE t;")] == ["SELECT 'open;\nDROP TABLE t;"]
    # PostgreSQL ends a -- comment at a carriage return too
    assert [c.text for c in chunks("-- c\rBEGIN;\rSELECT 1;")] == ["BEGIN", "SELECT 1"]
    assert chunks("") == [] and chunks(" ;; -- only comments\n/* */") == []
    # an unterminated comment hides nothing: it is a statement, and it does not parse
    assert [c.text for c in chunks("SELECT 1;\n/* /* */ DROP TABLE t;")] == [
        "SELECT 1", "/* /* */ DROP TABLE t;"]
