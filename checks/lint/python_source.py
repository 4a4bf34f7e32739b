"""From an Alembic revision to the ordered SQL statements it runs, read with ``ast``.

The revision is never imported. ``py_interp`` runs ``upgrade()`` and ``downgrade()``; this
module gives calls their meaning:

* ``op`` under any name (``from alembic import op as o``, ``import alembic``), its ops turned
  into SQL (``py_ops``), ``op.execute``, ``op.get_bind()`` / ``op.get_context().connection``
  and their ``execute`` / ``exec_driver_sql``, ``sa.text`` (under any name), ``DDL``;
* ``migrations.safe_ddl``: its helpers are the safe path (lock_timeout set, retried), and
  ``with_lock_retry(conn, work)`` runs ``work`` that way;
* functions the revision defines, and functions of the project's own modules it imports,
  are followed (their arguments bound);
* ``with op.get_context().autocommit_block():`` ends the transaction for its body;
  ``connection.commit()`` is recorded as a boundary the rules then question.

Whatever is executed but not known (a computed string, a SQLAlchemy Core statement, a
connection handed to unknown code, ``exec``) becomes a statement with ``sql=None`` and the
reason: the rules report it as "cannot verify", never as a pass.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.lint import py_values as v
from checks.lint.py_alembic import CannotVerify, SaEnum, q
from checks.lint.py_imported import ImportedCalls
from checks.lint.py_interp import Evaluator, OutOfBudget
from checks.lint.py_ops import batch_args, op_sql

_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # SQLAlchemy text() bind parameters
_DRIVER = re.compile(r"%\((\w+)\)s|%s|%%")  # psycopg placeholders
_EXECUTING = {"execute", "exec_driver_sql", "executemany", "executescript", "run_async",
              "run_sync", "run_callable", "invoke", "scalar", "scalars", "copy"}
_AUTOCOMMIT_HELPERS = {"create_index_concurrently", "drop_index_concurrently", "validate_constraint"}


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement a revision runs."""

    sql: str | None  # None: cannot be known statically (``problem`` says why)
    line: int
    end_line: int
    function: str  # upgrade | downgrade
    in_transaction: bool
    helper: bool  # run by a safe_ddl helper: lock_timeout is set and lock timeouts retried
    origin: str  # e.g. op.create_index, safe_ddl.execute, connection.execute
    problem: str | None = None
    event: str | None = None  # "commit" / "rollback" called on the connection


@dataclass
class AutocommitBlock:
    """``op.get_context().autocommit_block()``."""


@dataclass
class Batch:
    """``op.batch_alter_table(table)``: its ops are the op.* ones on that table."""

    table: str


@dataclass
class RevisionReader(ImportedCalls, Evaluator):
    """Runs one function of a revision and collects its statements."""

    path: Path
    modules: Any  # py_loader.ModuleLoader: the project modules a revision imports
    out: list[Stmt] = field(default_factory=list)
    function: str = "upgrade"
    in_txn: bool = True
    helper: int = 0
    sites: list[ast.AST] = field(default_factory=list)  # call nodes in the revision's file
    collect: bool = True

    def __post_init__(self) -> None:
        Evaluator.__init__(self)

    # ------------------------------------------------------------------ output
    def emit(self, node: ast.AST, origin: str, sql: str | None, problem: str | None = None, *,
             in_txn: bool | None = None, helper: bool = False, event: str | None = None) -> None:
        if not self.collect:
            return
        site = self.sites[-1] if self.sites else node
        line = getattr(site, "lineno", 1)
        end = getattr(site, "end_lineno", line) or line
        self.out.append(Stmt(sql, line, end, self.function,
                             self.in_txn if in_txn is None else in_txn,
                             helper or self.helper > 0, origin, problem, event))

    def unverifiable(self, node: ast.AST, origin: str, reason: str) -> None:
        self.emit(node, origin, None, reason)

    def describe(self, value: Any) -> str:
        return describe(value)

    # ------------------------------------------------------------------ attributes
    def attribute(self, obj: Any, name: str) -> Any:
        if isinstance(obj, v.Imported):
            path = f"{obj.module}.{obj.name}"
            if path == "alembic.op" or (path == "alembic" and name == "op"):
                return v.OpModule() if path == "alembic" else v.Bound(v.OpModule(), name)
            return v.Imported(path, name)
        if isinstance(obj, v.Module):
            if obj.name == "alembic" and name == "op":
                return v.OpModule()
            return v.Imported(obj.name, name)
        if isinstance(obj, v.Context):
            if name in ("connection", "bind"):
                return v.Connection()
            return v.Context() if name == "impl" else v.Bound(obj, name)
        if isinstance(obj, v.Connection):
            if name in ("connection", "dbapi_connection", "driver_connection"):
                return v.Connection(raw=True)
            return v.Bound(obj, name)
        if isinstance(obj, v.OpModule | Batch | SaEnum | str | list | dict | v.Unknown):
            return v.Bound(obj, name)
        # Anything else: unknown, but a later .execute() on it is still noticed.
        return v.Bound(v.Unknown(f"{describe(obj)}.{name}"), name)

    # ------------------------------------------------------------------ with blocks
    def enter_with(self, node: ast.With | ast.AsyncWith, managers: list[Any], scope: v.Scope) -> None:
        if any(isinstance(m, AutocommitBlock) for m in managers):
            before = self.in_txn
            self.in_txn = False
            try:
                self.block(node.body, scope)
            finally:
                self.in_txn = before
            return
        self.block(node.body, scope)

    # ------------------------------------------------------------------ imports
    def bind_import(self, node: ast.Import | ast.ImportFrom, scope: v.Scope) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    scope.names[alias.asname] = v.Module(alias.name)
                else:
                    root = alias.name.split(".")[0]
                    scope.names[root] = v.Module(root)
            return
        module = self.modules.absolute(node, self.module_name(scope))
        for alias in node.names:
            name = alias.asname or alias.name
            if module == "alembic" and alias.name == "op":
                scope.names[name] = v.OpModule()
            elif module == "alembic.op":
                scope.names[name] = v.Bound(v.OpModule(), alias.name)
            else:
                scope.names[name] = v.Imported(module, alias.name)

    # ------------------------------------------------------------------ calls
    def call(self, node: ast.Call, callee: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if isinstance(callee, v.Function):
            return self.call_function(node, callee, args, kwargs)
        if isinstance(callee, v.Bound):
            return self.call_method(node, callee, args, kwargs)
        if isinstance(callee, v.Imported):
            return self.call_imported(node, f"{callee.module}.{callee.name}", args, kwargs)
        return self.opaque(node, v.why(callee, "an object the linter cannot follow"), args, kwargs)

    def call_function(self, node: ast.Call, fn: v.Function, args: list[Any],
                      kwargs: dict[str, Any]) -> Any:
        if fn.module == "__revision__":
            return self.invoke(fn, args, kwargs)
        # A helper from another module: its statements are reported at the revision's call.
        self.sites.append(self.sites[-1] if self.sites else node)
        try:
            return self.invoke(fn, args, kwargs)
        finally:
            self.sites.pop()

    def opaque(self, node: ast.Call, what: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """A call the linter cannot follow: harmless unless it is handed the connection
        (or op); functions handed to it are run once, in case it calls them."""
        values = [*args, *kwargs.values()]
        if any(isinstance(a, v.Connection | v.OpModule | v.Context) for a in values):
            self.unverifiable(node, "call", f"{what} is handed the connection")
        for fn in (a for a in values if isinstance(a, v.Function)):
            self.invoke(fn, [v.Unknown("an argument passed by code the linter cannot follow")] * 4, {})
        return v.Unknown(f"the result of {what}")

    def call_method(self, node: ast.Call, bound: v.Bound, args: list[Any],
                    kwargs: dict[str, Any]) -> Any:
        obj, name = bound.obj, bound.name
        if isinstance(obj, v.OpModule):
            return self.op_call(node, name, args, kwargs)
        if isinstance(obj, Batch):
            try:
                a, kw = batch_args(name, obj.table, args, kwargs)
            except CannotVerify as exc:
                self.unverifiable(node, f"batch_op.{name}", str(exc))
                return None
            return self.op_call(node, name, a, kw)
        if isinstance(obj, v.Context):
            if name == "autocommit_block":
                return AutocommitBlock()
            if name == "execute":
                self.execute(node, "context.execute", args[0] if args else kwargs.get("sql"))
            return v.Unknown(f"the result of context.{name}()")
        if isinstance(obj, v.Connection):
            return self.connection_call(node, obj, name, args, kwargs)
        if isinstance(obj, SaEnum) and name in ("create", "drop"):
            values = ", ".join("'" + x.replace("'", "''") + "'" for x in obj.values)
            if obj.name is None:
                self.unverifiable(node, f"enum.{name}", "the enum's name is not known")
            elif name == "create":
                self.emit(node, "enum.create", f"CREATE TYPE {q(obj.name)} AS ENUM ({values})")
            else:
                self.emit(node, "enum.drop", f"DROP TYPE {q(obj.name)}")
            return None
        if isinstance(obj, str):
            return v.call_str_method(obj, name, args, kwargs)
        if isinstance(obj, list) and name in ("append", "extend", "insert"):
            getattr(obj, name)(*args)
            return None
        if isinstance(obj, dict) and name in ("get", "items", "keys", "values"):
            if not v.static(args):
                return v.Unknown("a run-time key")
            out = getattr(obj, name)(*args)
            return list(out) if name in ("items", "keys", "values") else out
        if isinstance(obj, v.Bound | v.Function):
            obj = v.Unknown(describe(obj))
        if isinstance(obj, v.Unknown) and name in _EXECUTING:
            self.unverifiable(node, name, f".{name}() on {obj.why}, which the linter cannot follow")
            return v.Unknown(f"the result of {name}()")
        return self.opaque(node, f"{name}()", args, kwargs)

    def op_call(self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name == "execute":
            self.execute(node, "op.execute", args[0] if args else kwargs.get("sqltext"))
            return None
        if name == "get_bind":
            return v.Connection()
        if name == "get_context":
            return v.Context()
        if name in ("f", "inline_literal"):
            return args[0] if args else None
        if name == "batch_alter_table":
            table = args[0] if args else kwargs.get("table_name")
            return Batch(table) if isinstance(table, str) else v.Unknown("a batch on a run-time table")
        if name in ("run_async", "invoke", "implementation_for", "register_operation"):
            self.unverifiable(node, f"op.{name}", f"op.{name}() runs code the linter cannot follow")
            return None
        try:
            for sql in op_sql(name, args, kwargs):
                self.emit(node, f"op.{name}", sql)
        except CannotVerify as exc:
            self.unverifiable(node, f"op.{name}", str(exc))
        return None

    def connection_call(self, node: ast.Call, conn: v.Connection, name: str, args: list[Any],
                        kwargs: dict[str, Any]) -> Any:
        if name in ("execute", "exec_driver_sql", "scalar", "scalars", "executemany"):
            statement = args[0] if args else kwargs.get("statement")
            driver = name == "exec_driver_sql" or conn.raw
            self.execute(node, f"connection.{name}", statement, driver=driver)
            return v.Unknown(f"the result of connection.{name}()")
        if name in ("commit", "rollback"):
            self.emit(node, f"connection.{name}", None, event=name)
            return None
        if name in ("execution_options", "begin", "begin_nested", "begin_twophase"):
            return conn
        if name == "cursor":
            return v.Connection(raw=True)
        if name in _EXECUTING:
            self.unverifiable(node, f"connection.{name}", f"connection.{name}() runs code "
                              "the linter cannot follow")
        return v.Unknown(f"the result of connection.{name}()")

    def execute(self, node: ast.Call, origin: str, statement: Any, *, driver: bool = False) -> None:
        """A statement sent to the server: its SQL, with placeholders made parseable."""
        if isinstance(statement, v.Text):
            driver, sql, reason = statement.driver, statement.sql, statement.why
        elif isinstance(statement, str):
            sql, reason = statement, ""
        else:
            sql, reason = None, v.why(statement, "a SQLAlchemy construct the linter does not render")
        if sql is None:
            self.unverifiable(node, origin, f"{origin}() of SQL built at run time ({reason or 'unknown'})")
            return
        self.emit(node, origin, placeholders(sql, driver))

def describe(value: Any) -> str:
    """A short name for a value in a message."""
    if isinstance(value, v.Unknown):
        return value.why
    if isinstance(value, v.Imported):
        return f"{value.module}.{value.name}"
    if isinstance(value, v.Module):
        return value.name
    if isinstance(value, v.Bound):
        return f"{describe(value.obj)}.{value.name}"
    if isinstance(value, v.Function):
        return f"function {getattr(value.node, 'name', 'lambda')}"
    return type(value).__name__


def placeholders(sql: str, driver: bool) -> str:
    """Bind parameters as PostgreSQL's own ``$n``, so the statement parses as it will run."""
    names: dict[str, int] = {}

    def number(key: str) -> str:
        names.setdefault(key, len(names) + 1)
        return f"${names[key]}"

    if driver:
        counter = iter(range(1, 1_000_000))
        return _DRIVER.sub(lambda m: "%" if m.group() == "%%" else
                           number(m.group(1)) if m.group(1) else f"${next(counter)}", sql)
    if ":" not in sql:
        return sql
    return _BIND.sub(lambda m: number(m.group(1)), sql).replace("\\:", ":")


__all__ = ["OutOfBudget", "RevisionReader", "Stmt", "placeholders"]
