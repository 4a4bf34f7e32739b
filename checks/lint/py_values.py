"""The values a revision computes, as far as they are known without running it.

A revision is read with ``ast``, never imported. Expressions are evaluated over *static*
values (str, numbers, bool, None, tuples, lists, dicts of those) and a few *markers* for
the objects that matter: Alembic's ``op``, a connection, the migration context, a
SQLAlchemy ``text()`` clause, a function the revision defines. Everything else is
:class:`Unknown`, carrying a short description of where it came from, so "cannot verify"
messages can say what was not known. Work is bounded (steps, string sizes, loop lengths),
so no input makes the linter slow or large.
"""

from __future__ import annotations

import ast
import builtins
import operator
from dataclasses import dataclass, field
from typing import Any

MAX_STR = 10 * 1024 * 1024  # a string the revision builds larger than this: unknown
MAX_ITEMS = 10_000  # items unrolled from one loop or comprehension
MAX_STEPS = 500_000  # expression nodes evaluated per revision


class Unknown:
    """A value only known at run time."""

    __slots__ = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why

    def __repr__(self) -> str:
        return f"Unknown({self.why})"


@dataclass(frozen=True)
class OpModule:
    """``alembic.op`` (under whatever name the revision binds it to)."""


@dataclass(frozen=True)
class Context:
    """``op.get_context()``: the MigrationContext."""


@dataclass(frozen=True)
class Connection:
    """``op.get_bind()`` / ``context.connection`` (``raw``: the DBAPI connection or a cursor)."""

    raw: bool = False


@dataclass(frozen=True)
class Module:
    """An imported module, by its dotted name."""

    name: str


@dataclass(frozen=True)
class Imported:
    """A name imported from a module (``from sqlalchemy import text``): ``module.name``."""

    module: str
    name: str


@dataclass(frozen=True)
class Bound:
    """A method looked up on a known object (``conn.execute``, ``op.add_column``)."""

    obj: Any
    name: str


@dataclass(frozen=True)
class Text:
    """A SQL string on its way to the server: ``text()``/``DDL()`` (``:name`` binds) or a
    driver string (``exec_driver_sql``: ``%s`` placeholders). ``sql`` None: not static."""

    sql: str | None
    driver: bool = False
    why: str = ""


@dataclass(frozen=True)
class SqlExpr:
    """A SQL expression fragment (``sa.func.now()``, ``sa.literal_column("x")``)."""

    sql: str


@dataclass
class Function:
    """A function (or lambda) the revision, or a module it imports, defines."""

    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    scope: Scope
    module: str  # where it was defined, for messages


@dataclass
class Scope:
    """Names visible to running code: locals, then the enclosing scopes, then globals."""

    names: dict[str, Any] = field(default_factory=dict)
    parent: Scope | None = None

    def lookup(self, name: str) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        if name in _SAFE_BUILTINS:
            return Imported("builtins", name)
        return Unknown(f"name {name}")


def static(value: Any) -> bool:
    """Whether ``value`` is fully known (no Unknown or marker inside)."""
    if isinstance(value, str | int | float | bool | type(None) | bytes):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return all(static(v) for v in value)
    if isinstance(value, dict):
        return all(static(k) and static(v) for k, v in value.items())
    return False


def why(value: Any, default: str = "a value known only at run time") -> str:
    """Where an unknown value came from, for a message."""
    if isinstance(value, Unknown):
        return value.why
    if isinstance(value, list | tuple):
        for item in value:
            if not static(item):
                return why(item, default)
    if isinstance(value, Text) and value.why:
        return value.why
    return default


def too_big(value: Any) -> bool:
    return isinstance(value, str | bytes) and len(value) > MAX_STR


# Pure builtins a revision may call on static values (nothing that reads files, imports,
# or runs code: exec, eval, getattr with a computed name, __import__ are "cannot verify").
_SAFE_BUILTINS = {"str", "int", "float", "bool", "len", "list", "tuple", "dict", "set",
                  "frozenset", "sorted", "reversed", "enumerate", "zip", "range", "min", "max",
                  "any", "all", "repr", "format", "abs", "round", "isinstance", "print",
                  "map", "filter", "getattr", "exec", "eval", "compile", "__import__",
                  "globals", "locals", "vars", "open", "setattr", "hasattr", "iter", "next",
                  "sum", "ValueError", "RuntimeError", "NotImplementedError", "TypeError",
                  "KeyError", "Exception"}
DYNAMIC_BUILTINS = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars",
                    "setattr", "open"}
_PURE_BUILTINS = {"str", "int", "float", "bool", "len", "list", "tuple", "dict", "set",
                  "frozenset", "sorted", "reversed", "enumerate", "zip", "range", "min", "max",
                  "any", "all", "repr", "format", "abs", "round", "sum"}
_SHAPE_BUILTINS = {"reversed", "list", "tuple", "enumerate", "zip", "len"}
_STR_METHODS = {"join", "format", "upper", "lower", "strip", "lstrip", "rstrip", "replace",
                "split", "splitlines", "startswith", "endswith", "capitalize", "title",
                "casefold", "removeprefix", "removesuffix", "partition", "rpartition", "zfill",
                "center", "ljust", "rjust", "count", "find", "index", "encode", "decode",
                "format_map"}
_BINOPS: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                            ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv,
                            ast.Div: operator.truediv, ast.BitOr: operator.or_,
                            ast.BitAnd: operator.and_}
_COMPARE: dict[type, Any] = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
                             ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
                             ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
                             ast.Is: operator.is_, ast.IsNot: operator.is_not}


def binop(op: ast.operator, left: Any, right: Any) -> Any:
    """``left <op> right`` on static values, bounded in size; Unknown otherwise."""
    fn = _BINOPS.get(type(op))
    if fn is None or not (static(left) and static(right)):
        return Unknown(why(left) if not static(left) else why(right))
    if isinstance(op, ast.Mult) and isinstance(left, str | list | tuple | bytes) and \
            isinstance(right, int) and len(left) * max(right, 0) > MAX_STR:
        return Unknown("a string too large to build")
    try:
        out = fn(left, right)
    except Exception:  # noqa: BLE001 - the revision would fail here at run time too
        return Unknown("an expression that fails when evaluated")
    return Unknown("a string too large to build") if too_big(out) else out


def compare(ops: list[ast.cmpop], values: list[Any]) -> Any:
    if not all(static(v) for v in values):
        return Unknown("a comparison of run-time values")
    try:
        return all(_COMPARE[type(o)](a, b) for o, a, b in zip(ops, values, values[1:], strict=False))
    except Exception:  # noqa: BLE001
        return Unknown("a comparison that fails when evaluated")


def call_builtin(name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """A pure builtin on static arguments (map and filter are handled by the caller)."""
    if name in _SHAPE_BUILTINS and args and all(isinstance(a, list | tuple) for a in args) \
            and not kwargs:
        # Reordering or counting a sequence needs its length, not its items' values.
        out = getattr(builtins, name)(*args)
        return list(out) if name in ("reversed", "enumerate", "zip") else out
    if name not in _PURE_BUILTINS or not static(args) or not static(kwargs):
        return Unknown(f"the result of {name}()")
    try:
        if name == "range" and len(range(*args)) > MAX_ITEMS:
            return Unknown("a range too long to unroll")
        out = getattr(builtins, name)(*args, **kwargs)
        if name in ("reversed", "enumerate", "zip", "range"):
            out = list(out)
    except Exception:  # noqa: BLE001
        return Unknown(f"a {name}() call that fails when evaluated")
    return Unknown("a string too large to build") if too_big(out) else out


def call_str_method(value: str, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``"...".join(...)``, ``.format(...)`` and the other pure str methods."""
    if name not in _STR_METHODS:
        return Unknown(f"the result of str.{name}()")
    if name == "join" and args and isinstance(args[0], list | tuple) and \
            not all(isinstance(a, str) for a in args[0]):
        return Unknown(why(args[0], "a string joined from run-time values"))
    if not static(args) or not static(kwargs):
        return Unknown(why(args) if not static(args) else "a run-time keyword argument")
    try:
        out = getattr(value, name)(*args, **kwargs)
    except Exception:  # noqa: BLE001
        return Unknown(f"a str.{name}() call that fails when evaluated")
    return Unknown("a string too large to build") if too_big(out) else out


def iterate(value: Any) -> list[Any] | None:
    """The items of a static iterable (bounded), or None."""
    if isinstance(value, dict):
        value = list(value)
    if isinstance(value, str | list | tuple | set | frozenset | bytes):
        items = list(value)
        return items if len(items) <= MAX_ITEMS else None
    return None


def format_value(value: Any, conversion: int, spec: Any) -> Any:
    """One ``{...}`` of an f-string."""
    if not static(value) or (spec is not None and not isinstance(spec, str)):
        return Unknown(why(value))
    if conversion == ord("r"):
        value = repr(value)
    elif conversion == ord("s"):
        value = str(value)
    elif conversion == ord("a"):
        value = ascii(value)
    try:
        return format(value, spec or "")
    except Exception:  # noqa: BLE001
        return Unknown("an f-string that fails when evaluated")
