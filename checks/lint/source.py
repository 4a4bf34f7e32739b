"""From a migration file to the ordered list of SQL statements it runs, with context.

Python revisions are read with ``ast`` (never imported): every ``op.*`` call, every
``safe_ddl`` helper and every ``op.execute(SQL)`` becomes a :class:`Stmt` carrying the SQL it
runs (synthesised for ``op.*`` calls), where it runs (inside the revision's transaction or
in an ``autocommit_block``), and whether a safe_ddl helper sets ``lock_timeout`` for it.
Plain ``.sql`` files are one transaction of an expand revision.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglast import parse_sql
from pglast.parser import ParseError

SUPPRESS = re.compile(
    r"phasegate-lint:\s*ignore\[(?P<ids>[A-Za-z0-9_, ]*)\]\s*(?:reason:\s*(?P<reason>.*\S))?")

# safe_ddl helpers: (runs inside the revision's transaction?, SQL template builder)
HELPERS = ("execute", "create_index_concurrently", "drop_index_concurrently",
           "add_constraint_not_valid", "validate_constraint")

_SA_TYPES = {"Text": "text", "String": "varchar", "Unicode": "text", "Integer": "integer",
             "BigInteger": "bigint", "SmallInteger": "smallint", "Boolean": "boolean",
             "JSONB": "jsonb", "JSON": "json", "UUID": "uuid", "Numeric": "numeric",
             "Float": "float8", "Date": "date", "Interval": "interval", "LargeBinary": "bytea"}


@dataclass(frozen=True)
class Stmt:
    """One statement a revision runs."""

    sql: str | None  # None: built at run time, the linter cannot read it
    line: int
    end_line: int
    function: str  # upgrade | downgrade
    in_transaction: bool
    helper: bool  # run by a safe_ddl helper: lock_timeout is set and lock timeouts retried
    origin: str  # e.g. op.create_index, safe_ddl.execute, op.execute


@dataclass(frozen=True)
class Suppression:
    line: int
    rule_ids: tuple[str, ...]
    reason: str | None


@dataclass
class Source:
    """A migration file, reduced to what the rules need."""

    path: Path
    phase: str
    statements: list[Stmt] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)


def q(ident: str) -> str:
    """Quote an identifier for the synthesised SQL (parsed by the linter, never executed)."""
    return '"' + ident.replace('"', '""') + '"'


class _Consts:
    """Module-level constants (str / tuple / list), so op.execute(CONSTANT) can be read."""

    def __init__(self, tree: ast.Module) -> None:
        self.values: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name):
                value = self.eval(node.value)
                if value is not None:
                    self.values[node.targets[0].id] = value

    def eval(self, node: ast.AST | None) -> Any:
        """The static value of an expression, or None when it is not static."""
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.values.get(node.id)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                val = self.eval(v.value if isinstance(v, ast.FormattedValue) else v)
                if val is None:
                    return None
                parts.append(str(val))
            return "".join(parts)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(left, str) and isinstance(right, str):
                return left + right
            return None
        if isinstance(node, ast.List | ast.Tuple):
            items = [self.eval(e) for e in node.elts]
            return None if any(i is None for i in items) else items
        if isinstance(node, ast.Call) and _callee(node)[1] == "text" and node.args:
            return self.eval(node.args[0])  # sa.text("...")
        return None


def _callee(call: ast.Call) -> tuple[str | None, str | None]:
    """(base, name) of ``base.name(...)`` or (None, name) of ``name(...)``."""
    f = call.func
    if isinstance(f, ast.Attribute):
        base = f.value
        if isinstance(base, ast.Name):
            return base.id, f.attr
        if isinstance(base, ast.Attribute):
            return base.attr, f.attr
        return "?", f.attr
    if isinstance(f, ast.Name):
        return None, f.id
    return None, None


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _arg(call: ast.Call, index: int, name: str) -> ast.AST | None:
    return call.args[index] if len(call.args) > index else _kw(call, name)


def _sa_type(node: ast.AST | None) -> str:
    """SQL type name of a SQLAlchemy type expression (sa.Text, sa.DateTime(timezone=True))."""
    call = node if isinstance(node, ast.Call) else None
    target = call.func if call else node
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    if name == "DateTime":
        tz = call is not None and isinstance(_kw(call, "timezone"), ast.Constant) \
            and _kw(call, "timezone").value is True  # type: ignore[union-attr]
        return "timestamptz" if tz else "timestamp"
    return _SA_TYPES.get(name, "text")


class _Synth:
    """SQL for the alembic ``op.*`` calls the rules care about."""

    def __init__(self, consts: _Consts) -> None:
        self.c = consts

    def s(self, node: ast.AST | None) -> str | None:
        value = self.c.eval(node)
        return value if isinstance(value, str) else None

    def default_sql(self, node: ast.AST | None) -> str | None:
        if node is None:
            return None
        if isinstance(node, ast.Call) and _callee(node)[1] == "text":
            return self.s(node.args[0]) if node.args else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "func":
            return f"{node.func.attr}()"  # sa.func.now()
        value = self.c.eval(node)
        return "'" + str(value).replace("'", "''") + "'" if value is not None else "NULL"

    def column(self, node: ast.AST | None) -> str | None:
        if not isinstance(node, ast.Call) or _callee(node)[1] != "Column" or not node.args:
            return None
        name = self.s(node.args[0])
        if name is None:
            return None
        parts = [q(name), _sa_type(node.args[1] if len(node.args) > 1 else None)]
        nullable = _kw(node, "nullable")
        if isinstance(nullable, ast.Constant) and nullable.value is False:
            parts.append("NOT NULL")
        default = self.default_sql(_kw(node, "server_default"))
        if default is not None:
            parts.append(f"DEFAULT {default}")
        return " ".join(parts)

    def cols(self, node: ast.AST | None) -> str | None:
        value = self.c.eval(node)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(q(v) for v in value)
        return None

    def op(self, name: str, call: ast.Call) -> str | None:  # noqa: C901 - one branch per op
        a = lambda i, n: self.s(_arg(call, i, n))  # noqa: E731
        if name == "execute":
            return a(0, "sqltext")
        if name == "create_table":
            t = a(0, "table_name")
            defs = [c for c in (self.column(x) for x in call.args[1:]) if c]
            return t and f"CREATE TABLE {q(t)} ({', '.join(defs)})"
        if name == "drop_table":
            t = a(0, "table_name")
            return t and f"DROP TABLE {q(t)}"
        if name == "create_index":
            n, t, cols = a(0, "index_name"), a(1, "table_name"), self.cols(_arg(call, 2, "columns"))
            if not (n and t and cols):
                return None
            unique = isinstance(_kw(call, "unique"), ast.Constant) and _kw(call, "unique").value  # type: ignore[union-attr]
            conc = isinstance(_kw(call, "postgresql_concurrently"), ast.Constant) \
                and _kw(call, "postgresql_concurrently").value  # type: ignore[union-attr]
            where = self.default_sql(_kw(call, "postgresql_where"))
            return (f"CREATE {'UNIQUE ' if unique else ''}INDEX {'CONCURRENTLY ' if conc else ''}"
                    f"{q(n)} ON {q(t)} ({cols})" + (f" WHERE {where}" if where else ""))
        if name == "drop_index":
            n = a(0, "index_name")
            conc = isinstance(_kw(call, "postgresql_concurrently"), ast.Constant) \
                and _kw(call, "postgresql_concurrently").value  # type: ignore[union-attr]
            return n and f"DROP INDEX {'CONCURRENTLY ' if conc else ''}{q(n)}"
        if name == "add_column":
            t, col = a(0, "table_name"), self.column(_arg(call, 1, "column"))
            return t and col and f"ALTER TABLE {q(t)} ADD COLUMN {col}"
        if name == "drop_column":
            t, col = a(0, "table_name"), a(1, "column_name")
            return t and col and f"ALTER TABLE {q(t)} DROP COLUMN {q(col)}"
        if name == "rename_table":
            old, new = a(0, "old_table_name"), a(1, "new_table_name")
            return old and new and f"ALTER TABLE {q(old)} RENAME TO {q(new)}"
        if name == "alter_column":
            return self.alter_column(call)
        return self.constraint(name, call)

    def alter_column(self, call: ast.Call) -> str | None:
        t, col = self.s(_arg(call, 0, "table_name")), self.s(_arg(call, 1, "column_name"))
        if not (t and col):
            return None
        actions = []
        if _kw(call, "type_") is not None:
            actions.append(f"ALTER COLUMN {q(col)} TYPE {_sa_type(_kw(call, 'type_'))}")
        nullable = _kw(call, "nullable")
        if isinstance(nullable, ast.Constant) and nullable.value is False:
            actions.append(f"ALTER COLUMN {q(col)} SET NOT NULL")
        statements = [f"ALTER TABLE {q(t)} {', '.join(actions)}"] if actions else []
        new = self.s(_kw(call, "new_column_name"))
        if new:
            statements.append(f"ALTER TABLE {q(t)} RENAME COLUMN {q(col)} TO {q(new)}")
        return "; ".join(statements) or None

    def constraint(self, name: str, call: ast.Call) -> str | None:
        n, t = self.s(_arg(call, 0, "constraint_name")), self.s(_arg(call, 1, "table_name"))
        not_valid = isinstance(_kw(call, "postgresql_not_valid"), ast.Constant) \
            and _kw(call, "postgresql_not_valid").value  # type: ignore[union-attr]
        suffix = " NOT VALID" if not_valid else ""
        if name == "create_foreign_key":
            t = self.s(_arg(call, 1, "source_table"))
            ref = self.s(_arg(call, 2, "referent_table"))
            local, remote = self.cols(_arg(call, 3, "local_cols")), self.cols(_arg(call, 4, "remote_cols"))
            if n and t and ref and local and remote:
                return (f"ALTER TABLE {q(t)} ADD CONSTRAINT {q(n)} FOREIGN KEY ({local}) "
                        f"REFERENCES {q(ref)} ({remote}){suffix}")
        elif name == "create_check_constraint":
            cond = self.default_sql(_arg(call, 2, "condition"))
            if cond and cond.startswith("'"):
                cond = self.s(_arg(call, 2, "condition"))
            if n and t and cond:
                return f"ALTER TABLE {q(t)} ADD CONSTRAINT {q(n)} CHECK ({cond}){suffix}"
        elif name in ("create_unique_constraint", "create_primary_key"):
            cols = self.cols(_arg(call, 2, "columns"))
            kind = "UNIQUE" if name == "create_unique_constraint" else "PRIMARY KEY"
            if n and t and cols:
                return f"ALTER TABLE {q(t)} ADD CONSTRAINT {q(n)} {kind} ({cols})"
        elif name == "drop_constraint" and n and t:
            return f"ALTER TABLE {q(t)} DROP CONSTRAINT {q(n)}"
        return None

    def helper(self, name: str, call: ast.Call) -> str | None:
        a = lambda i, n: self.s(_arg(call, i, n))  # noqa: E731
        if name == "execute":
            return a(0, "sql")
        if name == "create_index_concurrently":
            n, t, cols, where = a(0, "name"), a(1, "table"), a(2, "columns"), a(3, "where")
            unique = isinstance(_kw(call, "unique"), ast.Constant) and _kw(call, "unique").value  # type: ignore[union-attr]
            return n and t and cols and (
                f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {q(n)} ON {q(t)} ({cols})"
                + (f" WHERE {where}" if where else ""))
        if name == "drop_index_concurrently":
            n = a(0, "name")
            return n and f"DROP INDEX CONCURRENTLY {q(n)}"
        if name == "add_constraint_not_valid":
            t, n, d = a(0, "table"), a(1, "name"), a(2, "definition")
            return t and n and d and f"ALTER TABLE {q(t)} ADD CONSTRAINT {q(n)} {d} NOT VALID"
        if name == "validate_constraint":
            t, n = a(0, "table"), a(1, "name")
            return t and n and f"ALTER TABLE {q(t)} VALIDATE CONSTRAINT {q(n)}"
        return None


_OPS = {"execute", "create_table", "drop_table", "create_index", "drop_index", "add_column",
        "drop_column", "rename_table", "alter_column", "create_foreign_key",
        "create_check_constraint", "create_unique_constraint", "create_primary_key",
        "drop_constraint"}
# Helpers that run outside the revision's transaction (in an autocommit block).
_AUTOCOMMIT_HELPERS = {"create_index_concurrently", "drop_index_concurrently", "validate_constraint"}


class _Walker:
    def __init__(self, consts: _Consts, helper_names: set[str], function: str) -> None:
        self.synth = _Synth(consts)
        self.helper_names = helper_names
        self.function = function
        self.out: list[Stmt] = []

    def body(self, nodes: list[ast.stmt], in_txn: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.With | ast.AsyncWith):
                auto = any(isinstance(i.context_expr, ast.Call)
                           and _callee(i.context_expr)[1] == "autocommit_block" for i in node.items)
                self.body(node.body, in_txn and not auto)
                continue
            for call in _calls_in_order(node):
                self.call(call, in_txn)
            for attr in ("body", "orelse", "finalbody"):
                inner = getattr(node, attr, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt) \
                        and not isinstance(node, ast.FunctionDef):
                    self.body(inner, in_txn)
            for handler in getattr(node, "handlers", []) or []:
                self.body(handler.body, in_txn)

    def call(self, call: ast.Call, in_txn: bool) -> None:
        base, name = _callee(call)
        end = getattr(call, "end_lineno", call.lineno) or call.lineno
        if base == "op" and name in _OPS:
            sql = self.synth.op(name, call)
            self.out.append(Stmt(sql, call.lineno, end, self.function, in_txn, False, f"op.{name}"))
        elif (base == "safe_ddl" and name in HELPERS) or (base is None and name in self.helper_names):
            sql = self.synth.helper(name or "", call)
            txn = in_txn and name not in _AUTOCOMMIT_HELPERS
            self.out.append(Stmt(sql, call.lineno, end, self.function, txn, True, f"safe_ddl.{name}"))


def _calls_in_order(node: ast.stmt) -> list[ast.Call]:
    """Calls in a simple statement (not in nested blocks), in source order."""
    if isinstance(node, ast.If | ast.For | ast.While | ast.Try | ast.With | ast.FunctionDef):
        heads = [getattr(node, "test", None), getattr(node, "iter", None)]
        found = [c for h in heads if h is not None for c in ast.walk(h) if isinstance(c, ast.Call)]
    else:
        found = [c for c in ast.walk(node) if isinstance(c, ast.Call)]
    return sorted(found, key=lambda c: (c.lineno, c.col_offset))


def suppressions(text: str, comment: str = "#") -> list[Suppression]:
    """Every ``phasegate-lint: ignore[...]`` comment with its line."""
    out = []
    if comment == "#":
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        comments = [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]
    else:
        comments = [(i, line) for i, line in enumerate(text.splitlines(), 1) if "--" in line]
    for line, body in comments:
        m = SUPPRESS.search(body)
        if m:
            ids = tuple(i.strip().upper() for i in m["ids"].split(",") if i.strip())
            out.append(Suppression(line, ids, m["reason"]))
    return out


def load_python(path: Path) -> Source:
    text = path.read_text()
    tree = ast.parse(text, str(path))
    consts = _Consts(tree)
    phase = consts.values.get("phase")
    helper_names = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom)
                    and n.module == "migrations.safe_ddl" for a in n.names if a.name in HELPERS}
    src = Source(path, phase if isinstance(phase, str) else "unknown", suppressions=suppressions(text))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("upgrade", "downgrade"):
            walker = _Walker(consts, helper_names, node.name)
            walker.body(node.body, in_txn=True)
            src.statements += walker.out
    return src


def load_sql(path: Path) -> Source:
    """A plain .sql file: one transaction of an expand revision's upgrade."""
    text = path.read_text()
    src = Source(path, "expand", suppressions=suppressions(text, "--"))
    try:
        raws = parse_sql(text)
    except ParseError:
        src.statements.append(Stmt(None, 1, 1, "upgrade", True, False, "sql file"))
        return src
    for raw in raws:
        start = raw.stmt_location or 0
        chunk = text[start:start + raw.stmt_len] if raw.stmt_len else text[start:]
        line = text.count("\n", 0, start) + 1 + (len(chunk) - len(chunk.lstrip("\n\r\t ")) and
                                                 chunk[: len(chunk) - len(chunk.lstrip())].count("\n"))
        src.statements.append(Stmt(chunk.strip(), line, line + chunk.strip().count("\n"),
                                   "upgrade", True, False, "sql file"))
    return src


def load(path: Path) -> Source:
    return load_sql(path) if path.suffix == ".sql" else load_python(path)
