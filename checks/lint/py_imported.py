"""Calls to names a revision imports: builtins, SQLAlchemy (``text``, ``Column``, types,
``Identity``/``Computed``/``ForeignKey``, enums), ``migrations.safe_ddl`` (the safe path:
lock_timeout set, lock timeouts retried), stdlib and libraries (harmless unless handed the
connection), code that runs code (``exec``, ``importlib``, ``subprocess``: cannot verify),
and functions of the project's own modules (followed, like the revision's own).
"""

from __future__ import annotations

import ast
import sys
import textwrap
from typing import TYPE_CHECKING, Any

from checks.lint import py_values as v
from checks.lint.py_alembic import CannotVerify, SaColumn, SaEnum, SaItem, make_type, q, type_sql

_SA_ITEMS = {"Identity", "Computed", "ForeignKey", "PrimaryKeyConstraint", "UniqueConstraint",
             "CheckConstraint", "ForeignKeyConstraint", "Index", "Sequence"}
_KNOWN_LIBS = {"sqlalchemy", "alembic", "psycopg", "psycopg2", "typing_extensions"}
_SAFE_DDL = "migrations.safe_ddl"
_DYNAMIC = {"importlib.import_module", "importlib.__import__", "os.system", "os.popen",
            "os.execv", "os.execvp", "os.spawnv", "pty.spawn"}


class ImportedCalls:
    """Mixed into ``python_source.RevisionReader``."""

    modules: Any
    helper: int

    if TYPE_CHECKING:  # provided by RevisionReader and its Evaluator base
        def emit(self, node: ast.AST, origin: str, sql: str | None, problem: str | None = None, *,
                 in_txn: bool | None = None, helper: bool = False, event: str | None = None) -> None:
            ...

        def unverifiable(self, node: ast.AST, origin: str, reason: str) -> None:
            ...

        def opaque(self, node: ast.Call, what: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
            ...

        def call_function(self, node: ast.Call, fn: v.Function, args: list[Any],
                          kwargs: dict[str, Any]) -> Any:
            ...

        def attribute(self, obj: Any, name: str) -> Any:
            ...

        def invoke(self, fn: v.Function, args: list[Any], kwargs: dict[str, Any]) -> Any:
            ...

    def call_imported(self, node: ast.Call, path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        root, _, name = path.rpartition(".")
        top = path.split(".")[0]
        if root == "builtins":
            return self.call_builtin(node, name, args, kwargs)
        if top == "sqlalchemy":
            return self.sa_call(node, name, args, kwargs)
        if root == _SAFE_DDL:
            return self.safe_ddl_call(node, name, args, kwargs)
        if path == "textwrap.dedent" and args and isinstance(args[0], str):
            return textwrap.dedent(args[0])
        if path in _DYNAMIC or root in ("subprocess", "runpy"):
            self.unverifiable(node, path, f"{path}() runs code or commands the linter cannot follow")
            return v.Unknown(f"the result of {path}()")
        if top in sys.stdlib_module_names or top in _KNOWN_LIBS:
            return self.opaque(node, f"{path}()", args, kwargs)
        fn = self.modules.function(path)
        if isinstance(fn, v.Function):
            return self.call_function(node, fn, args, kwargs)
        if fn is None:
            return self.opaque(node, f"{path}()", args, kwargs)
        self.unverifiable(node, path, f"{path}() comes from {fn}, which the linter cannot read")
        return v.Unknown(f"the result of {path}()")

    def call_builtin(self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name in v.DYNAMIC_BUILTINS:
            self.unverifiable(node, name, f"{name}() runs or looks up code dynamically")
            return v.Unknown(f"the result of {name}()")
        if name == "getattr" and len(args) >= 2:
            if isinstance(args[1], str):
                return self.attribute(args[0], args[1])
            self.unverifiable(node, "getattr", "getattr() with a name known only at run time")
            return v.Unknown("a getattr() with a run-time name")
        if name in ("map", "filter") and len(args) == 2 and isinstance(args[0], v.Function):
            items = v.iterate(args[1])
            if items is None:
                return self.opaque(node, f"{name}()", args, kwargs)
            results = [self.invoke(args[0], [x], {}) for x in items]
            return results if name == "map" else [x for x, r in zip(items, results, strict=True) if r]
        if name == "print":
            return None
        return v.call_builtin(name, args, kwargs)

    def sa_call(self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name in ("text", "DDL"):
            sql = args[0] if args else kwargs.get("text")
            return v.Text(sql if isinstance(sql, str) else None, why=v.why(sql))
        if name == "literal_column" and args and isinstance(args[0], str):
            return v.SqlExpr(args[0])
        if name == "Column":
            rest = list(args)
            col = rest.pop(0) if rest and isinstance(rest[0], str) else kwargs.get("name")
            typ = rest.pop(0) if rest and not isinstance(rest[0], SaItem) else kwargs.get("type_")
            items = [r for r in rest if isinstance(r, SaItem)]
            if not isinstance(col, str):
                return v.Unknown(f"a column named {v.why(col)}")
            return SaColumn(col, type_sql(typ), kwargs, items)
        if name in _SA_ITEMS:
            return SaItem(name, list(args), kwargs)
        if name in ("Enum", "ENUM"):
            labels = tuple(a for a in args if isinstance(a, str))
            enum_name = kwargs.get("name")
            return SaEnum(enum_name if isinstance(enum_name, str) else None, labels)
        if name[:1].isupper():
            return make_type(name, args, kwargs)
        if node is not None and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "func":
            return v.SqlExpr(f"{name}()")  # sa.func.now()
        return self.opaque(node, f"sqlalchemy.{name}()", args, kwargs)

    def safe_ddl_call(self, node: ast.Call, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        def a(i: int, key: str) -> Any:
            return args[i] if len(args) > i else kwargs.get(key)

        origin = f"safe_ddl.{name}"
        try:
            if name == "execute":
                sql = a(0, "sql")
                if not isinstance(sql, str):
                    raise CannotVerify(f"the SQL is {v.why(sql)}")
                self.emit(node, origin, sql, helper=True)
            elif name == "create_index_concurrently":
                unique = "UNIQUE " if kwargs.get("unique") is True else ""
                where = a(4, "where")
                sql = (f"CREATE {unique}INDEX CONCURRENTLY {q(_s(a(0, 'name')))} ON "
                       f"{q(_s(a(1, 'table')))} ({_s(a(2, 'columns'))})"
                       + (f" WHERE {_s(where)}" if where is not None else ""))
                self.emit(node, origin, sql, in_txn=False, helper=True)
            elif name == "drop_index_concurrently":
                self.emit(node, origin, f"DROP INDEX CONCURRENTLY {q(_s(a(0, 'name')))}",
                          in_txn=False, helper=True)
            elif name == "add_constraint_not_valid":
                self.emit(node, origin, f"ALTER TABLE {q(_s(a(0, 'table')))} ADD CONSTRAINT "
                          f"{q(_s(a(1, 'name')))} {_s(a(2, 'definition'))} NOT VALID", helper=True)
            elif name == "validate_constraint":
                self.emit(node, origin, f"ALTER TABLE {q(_s(a(0, 'table')))} VALIDATE CONSTRAINT "
                          f"{q(_s(a(1, 'name')))}", in_txn=False, helper=True)
            elif name == "with_lock_retry":
                work = a(1, "work")
                if not isinstance(work, v.Function):
                    raise CannotVerify(f"the work is {v.why(work, 'not a function the linter can read')}")
                self.helper += 1
                try:
                    self.invoke(work, [], {})
                finally:
                    self.helper -= 1
            elif name in ("IrreversibleMigration", "DdlSettings"):
                return v.Unknown(f"a safe_ddl.{name}")
            else:
                raise CannotVerify(f"safe_ddl.{name}() is not one of the helpers the linter knows")
        except CannotVerify as exc:
            self.unverifiable(node, origin, str(exc))
        return None


def _s(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise CannotVerify(f"an argument is {v.why(value)}")
