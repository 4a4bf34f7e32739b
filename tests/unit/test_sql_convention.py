"""The one SQL convention, kept by tests that need no server.

SQL lives in ``.sql`` files as named blocks (``ledger.sqlfiles`` parses them), each with a
one-line description, written with psycopg's ``%(name)s`` placeholders only, so that the
driver gets the file's text unchanged and a person can paste a block into ``psql`` once the
values are in. Python names a block through the loader with literal arguments, and holds no
SQL of its own (runbook text for people excepted).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger import sqlfiles
from ledger.errors import PhasegateError
from ledger.sqlfiles import NamedQuery

ROOT = Path(__file__).resolve().parents[2]
CHECKS_SQL = ROOT / "checks" / "sql"
# Packages whose modules may hold no SQL: every statement they run is a block.
NO_INLINE_SQL = ("ledger", "rollout", "demo")
# Action/plan fields holding runbook text: statements with their values written in, for a
# person to paste into psql; the kit never executes them.
RUNBOOK_FIELDS = {"manual_apply", "manual_undo", "verify_undo", "verify_rollback"}
# Modules that name blocks through a variable; what they name is checked separately.
DYNAMIC_REFERENCES = {"checks/triage.py"}

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|DROP|ALTER|TRUNCATE|"
                        r"ANALYZE|VACUUM|LOCK|GRANT|REVOKE|COPY|EXPLAIN|SET|RESET)\s")
_SQL_CLAUSE = re.compile(r"\b(WHERE|RETURNING|ON CONFLICT|ORDER BY|GROUP BY|LIMIT|VALUES)\b")
# What psycopg and psql both leave alone: string literals, quoted identifiers, comments.
_LITERAL = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$", re.S)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


# ---------------------------------------------------------------------------- discovery


def _repo_files(pattern: str, under: Path = ROOT) -> list[Path]:
    """Files of the repository (not of virtualenvs, caches or git)."""
    return sorted(p for p in under.rglob(pattern)
                  if not any(part.startswith((".", "__pycache__", "node_modules"))
                             for part in p.relative_to(ROOT).parts))


def _sql_files() -> list[Path]:
    return _repo_files("*.sql")


def _blocks() -> Iterator[tuple[Path, NamedQuery]]:
    for path in _sql_files():
        for block in sqlfiles.load(str(path)).values():
            yield path, block


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ---------------------------------------------------------------------------- block rules


def _code(sql: str) -> str:
    """The SQL with literals emptied and comments removed: what binds could hide in."""
    return _LITERAL.sub("''", _COMMENT.sub(" ", sql))


def placeholder_problems(sql: str) -> list[str]:
    """Why a block's text is not plain SQL with ``%(name)s`` placeholders (empty: it is)."""
    problems = []
    # psycopg reads % everywhere, comments and literals included: %(name)s is the only one.
    if "%" in sqlfiles.PLACEHOLDER.sub("", sql):
        problems.append("a % that is not a %(name)s placeholder (%s, or a literal %)")
    if "\\:" in sql:
        problems.append(r"'\:', an escape only SQLAlchemy's text() reads")
    code = _code(sql).replace("::", "  ")
    if re.search(r":['\"A-Za-z_]", code):
        problems.append(":name, a bind only SQLAlchemy's text() (or a psql variable) reads")
    if re.search(r"[{}]", code):
        problems.append("{...}: a template, not SQL psql can run")
    return problems


def test_every_sql_file_is_named_blocks_with_descriptions() -> None:
    assert len(_sql_files()) >= 10
    for path in _sql_files():
        blocks = sqlfiles.load(str(path))
        assert blocks, f"{_rel(path)} holds no '-- name:' block"
        for block in blocks.values():
            assert block.description, f"{_rel(path)}: {block.name} has no description"
            assert block.sql and not block.sql.lstrip().startswith("-- name"), block.name


def test_block_names_are_unique_across_the_repository() -> None:
    seen: dict[str, str] = {}
    for path, block in _blocks():
        assert block.name not in seen, f"{block.name} in {_rel(path)} and {seen[block.name]}"
        seen[block.name] = _rel(path)


def test_blocks_use_only_psycopg_named_placeholders() -> None:
    bad = [f"{_rel(path)}: {block.name}: {problem}"
           for path, block in _blocks() for problem in placeholder_problems(block.sql)]
    assert bad == []


@pytest.mark.parametrize("sql, problem", [
    ("SELECT 1 WHERE id = :id", ":name"),
    ("SELECT 'a' || '\\:job-'", "\\:"),
    ("SELECT 1 WHERE id = %s", "a % that"),
    ("SELECT 1 WHERE run_id LIKE 'job-%'", "a % that"),
    ("SELECT 1 -- 40% faster", "a % that"),
    ("SELECT {cols} FROM t", "template"),
    ("SELECT :'name'", ":name"),
])
def test_the_placeholder_rules_catch(sql: str, problem: str) -> None:
    assert any(problem in p for p in placeholder_problems(sql)), placeholder_problems(sql)


def test_the_placeholder_rules_allow_casts_literals_and_comments() -> None:
    sql = ("SELECT %(id)s::bigint, 'a:b' || ':job-' || x::text, '{}'::jsonb, \"odd:name\" "
           "-- a comment: with a colon\nFROM t WHERE ts = '12:30'::time AND arr[1:2] = %(a)s")
    assert placeholder_problems(sql) == []


def test_the_parser_refuses_blocks_it_would_lose() -> None:
    with pytest.raises(PhasegateError, match="no description"):
        sqlfiles.parse("-- name: x\nSELECT 1")
    with pytest.raises(PhasegateError, match="defined twice"):
        sqlfiles.parse("-- name: x\n-- one\nSELECT 1;\n-- name: x\n-- two\nSELECT 2;")
    with pytest.raises(PhasegateError, match="before the first"):
        sqlfiles.parse("SELECT 0;\n-- name: x\n-- one\nSELECT 1;")
    assert sqlfiles.parse("-- a file comment\n\n-- name: x\n-- one\nSELECT 1;")["x"].sql == "SELECT 1"


def test_render_writes_the_values_in_as_literals() -> None:
    sql = "UPDATE t\nSET v = %(v)s -- why\n-- a line of its own\nWHERE n = %(n)s AND k = %(n)s"
    assert sqlfiles.render("SELECT %(a)s, %(b)s, %(c)s", {"a": "it's", "b": None, "c": 3}) == \
        "SELECT 'it''s', NULL, 3;"
    assert sqlfiles.render(sql, {"v": "x", "n": 1}) == "UPDATE t\nSET v = 'x' -- why\nWHERE n = 1 AND k = 1;"
    with pytest.raises(PhasegateError, match="no value"):
        sqlfiles.render(sql, {"v": "x"})


# ---------------------------------------------------------------------------- references


def _loader_names(tree: ast.Module) -> dict[str, str]:
    """Local names bound to a loader: ``query`` functions and ``sqlfiles``/``sqlfile``
    modules, mapped to which loader ('ledger': sql/ beside the module, 'checks': checks/sql)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        for alias in node.names:
            local = alias.asname or alias.name
            if node.module == "ledger.sqlfiles" and alias.name == "query":
                names[local] = "ledger"
            elif node.module == "checks.sqlfile" and alias.name == "query":
                names[local] = "checks"
            elif node.module == "ledger" and alias.name == "sqlfiles":
                names[local + ".query"] = "ledger"
            elif node.module == "checks" and alias.name == "sqlfile":
                names[local + ".query"] = "checks"
    return names


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
        return f"{call.func.value.id}.{call.func.attr}"
    return None


def _references() -> tuple[set[tuple[str, str]], list[str]]:
    """Every (sql file, block name) Python names through a loader with literal arguments,
    and the call sites that name one through a variable."""
    literal: set[tuple[str, str]] = set()
    dynamic: list[str] = []
    for path in _repo_files("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loaders = _loader_names(tree)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            kind = loaders.get(_call_name(call) or "")
            if kind is None:
                continue
            args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
            if kind == "ledger" and len(args) == 3 and isinstance(call.args[0], ast.Name):
                file, name = args[1], args[2]
                sql_dir = path.parent / sqlfiles.SQL_DIR
            elif kind == "checks" and len(args) == 2:
                file, name = args
                sql_dir = CHECKS_SQL
            else:
                file = name = None
                sql_dir = CHECKS_SQL
            if isinstance(file, str) and isinstance(name, str):
                literal.add((_rel(sql_dir / f"{file}.sql"), name))
            else:
                dynamic.append(f"{_rel(path)}:{call.lineno}")
    return literal, dynamic


def test_every_block_python_names_exists() -> None:
    literal, dynamic = _references()
    assert len(literal) > 60
    blocks = {(_rel(path), block.name) for path, block in _blocks()}
    assert sorted(literal - blocks) == []
    # A block named through a variable cannot be checked by reading the call: keep them few.
    assert {site.split(":")[0] for site in dynamic} <= DYNAMIC_REFERENCES, dynamic


def test_blocks_named_through_variables_exist() -> None:
    from checks import all_checks
    from checks.sqlfile import load
    from checks.triage import TRIAGE

    assert {q.name for q in TRIAGE} <= set(load("triage"))
    for spec in all_checks().values():
        assert spec.sql_file is None or (CHECKS_SQL / f"{spec.sql_file}.sql").is_file(), spec


def test_every_block_of_the_ledger_and_the_rollout_is_used() -> None:
    literal, _ = _references()
    unused = [(_rel(path), block.name) for path, block in _blocks()
              if _rel(path).startswith(NO_INLINE_SQL) and (_rel(path), block.name) not in literal]
    assert unused == []


# ---------------------------------------------------------------------------- no inline SQL


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _runbook_text(tree: ast.Module) -> set[int]:
    """Every node inside a runbook field (a keyword argument or a dict entry)."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in RUNBOOK_FIELDS:
            roots.append(node.value)
        elif isinstance(node, ast.Dict):
            roots += [v for k, v in zip(node.keys, node.values, strict=True)
                      if isinstance(k, ast.Constant) and k.value in RUNBOOK_FIELDS]
    return {id(n) for root in roots for n in ast.walk(root)}


def inline_sql(source: str) -> list[tuple[int, str]]:
    """String constants of a module that look like SQL (docstrings and runbook text aside)."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _runbook_text(tree)
    return [(n.lineno, n.value[:60]) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
            and (_SQL_START.match(n.value) or _SQL_CLAUSE.search(n.value))]


def test_no_sql_strings_in_the_ledger_or_the_rollout() -> None:
    modules = [p for package in NO_INLINE_SQL for p in _repo_files("*.py", ROOT / package)]
    assert len(modules) > 30
    found = [f"{_rel(p)}:{line}: {text!r}" for p in modules
             for line, text in inline_sql(p.read_text(encoding="utf-8"))]
    assert found == []


def test_the_inline_sql_scan_catches() -> None:
    source = '''
GET = "SELECT a FROM t WHERE id = %s"

def f(conn, r):
    """Reads with SELECT ... WHERE: a docstring is prose."""
    sql = "SELECT 1 FROM t"
    if r:
        sql += " WHERE rollout_id = :r"
    conn.execute(text(sql), {"r": r})
    return Action(manual_undo=("UPDATE t SET a = 1;",), verify_undo=(f"SELECT {r};",))
'''
    assert [line for line, _ in inline_sql(source)] == [2, 6, 8]
