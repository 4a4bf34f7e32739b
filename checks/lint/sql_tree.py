"""PostgreSQL's parse trees, as the rules read them.

Statements are parsed with pglast's ``parse_sql_json`` (libpg_query: PostgreSQL's own
parser) and loaded as plain dicts: about five times faster than building pglast's node
objects, which matters for a 50 MB file. A tree too deep for ``json``'s recursion limit
(hundreds of nested calls in one default) is loaded again on a thread with a large stack;
every walk over a tree here is iterative, so no depth makes the linter crash.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pglast.parser import ParseError, parse_plpgsql_json, parse_sql_json

Node = dict[str, Any]
T = TypeVar("T")
_LEADING = re.compile(rb"(?:\s+|--[^\n\r]*|/\*.*?\*/)*", re.S)


@dataclass(frozen=True, slots=True)
class Parsed:
    """One statement: its node type, its fields, and where it starts in its chunk."""

    kind: str
    node: Node
    line_offset: int  # lines from the start of the chunk to the statement's first token
    calls: bool = True  # whether it may call a function (False: no FuncCall in the tree)


class SyntaxProblem(Exception):
    """The text does not parse; ``line_offset`` is where, from the start of the text."""

    def __init__(self, message: str, line_offset: int) -> None:
        super().__init__(message)
        self.line_offset = line_offset


def deep(fn: Callable[[], T]) -> T:
    """``fn()`` with a raised recursion limit on a thread with a large stack: for parse
    trees (and revisions) nested deeper than the interpreter's default allows."""
    out: dict[str, Any] = {}

    def run() -> None:
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, 200_000))
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            out["error"] = exc
        finally:
            sys.setrecursionlimit(old)

    # PostgreSQL's parser refuses input nested past ~10k levels; 512 MB of (reserved, mostly
    # untouched) stack covers that with room to spare.
    previous = threading.stack_size(512 * 1024 * 1024)
    try:
        worker = threading.Thread(target=run, name="phasegate-lint-deep")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    if "error" in out:
        raise out["error"]
    return out["value"]  # type: ignore[no-any-return]


def _loads(raw: str) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        return deep(lambda: json.loads(raw))


def parse(text: str) -> list[Parsed]:
    """Every statement in ``text``; raises :class:`SyntaxProblem` naming the line."""
    try:
        raw = parse_sql_json(text)
    except ParseError as exc:
        message, index = (exc.args + (0,))[:2] if exc.args else ("syntax error", 0)
        index = index if isinstance(index, int) else 0
        raise SyntaxProblem(str(message), text.count("\n", 0, max(0, index))) from None
    # Found in the JSON text, at C speed: most statements call no function, and the rules
    # that look for calls can then skip walking their trees.
    calls = '"FuncCall"' in raw
    quiet = _quiet_kind(raw, calls)
    if quiet is not None:  # parsed (so it is valid SQL) but no rule reads its tree
        return [Parsed(quiet, {}, 0 if text[:1].isalpha() else _first_token_line(text, 0), calls)]
    stmts = _loads(raw).get("stmts", [])
    if len(stmts) == 1:
        (kind, node), = stmts[0]["stmt"].items()
        starts_clean = text[:1].isalpha() or text[:1] == "("  # the splitter's usual chunk
        return [Parsed(kind, node, 0 if starts_clean else _first_token_line(text, 0), calls)]
    data = text if text.isascii() else text.encode("utf-8")
    out = []
    for item in stmts:
        (kind, node), = item["stmt"].items()
        offset = item.get("stmt_location", 0)
        out.append(Parsed(kind, node, _first_token_line(data, offset), calls))
    return out


# Statements no rule looks inside (INSERT only when it calls no function: INSERT ... SELECT f()
# runs f). Loading their trees is most of the cost of a data-heavy script.
QUIET = frozenset({"InsertStmt", "CommentStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt",
                   "AlterRoleStmt", "AlterOwnerStmt", "SecLabelStmt", "NotifyStmt", "ListenStmt",
                   "CheckPointStmt", "CreateExtensionStmt", "AlterExtensionStmt", "DefineStmt",
                   "AlterSeqStmt", "CreateCastStmt", "DeallocateStmt", "AlterDefaultPrivilegesStmt"})


def _quiet_kind(raw: str, calls: bool) -> str | None:
    start = raw.find('"stmts":[{"stmt":{"')
    if start < 0:
        return None
    start += len('"stmts":[{"stmt":{"')
    kind = raw[start:raw.find('"', start)]
    if kind not in QUIET or (kind == "InsertStmt" and calls):
        return None
    if raw.find('{"stmt":{', start) >= 0:  # several statements: load them all
        return None
    return kind


def _first_token_line(data: str | bytes, offset: int) -> int:
    blob = data.encode("utf-8") if isinstance(data, str) else data
    m = _LEADING.match(blob, offset)
    start = m.end() if m else offset
    return blob.count(b"\n", 0, start)


# ---------------------------------------------------------------------------- node access
def unwrap(value: Any) -> tuple[str, Node]:
    """``{"RangeVar": {...}}`` -> ("RangeVar", {...}); a bare field dict -> ("", dict)."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key[:1].isupper() and isinstance(inner, dict):
            return key, inner
    return "", value if isinstance(value, dict) else {}


def strings(items: list[Any] | None) -> list[str]:
    """The ``sval`` of a list of ``String`` nodes (qualified names, option lists)."""
    out = []
    for item in items or ():
        kind, node = unwrap(item)
        if kind == "String":
            out.append(node.get("sval", ""))
    return out


def relname(node: Node | None) -> str | None:
    """Table name of a RangeVar (wrapped or not), unqualified."""
    if not node:
        return None
    _, rv = unwrap(node)
    return rv.get("relname")


def type_names(type_name: Node | None) -> list[str]:
    if not type_name:
        return []
    _, tn = unwrap(type_name)
    return strings(tn.get("names"))


def walk(root: Any) -> Iterator[tuple[str, Node]]:
    """Every wrapped node under ``root`` (depth first, iteratively)."""
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if len(value) == 1:
                (key, inner), = value.items()
                if key[:1].isupper() and isinstance(inner, dict):
                    yield key, inner
                    stack.append(inner)
                    continue
            stack.extend(v for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend(reversed(value))


def const_value(expr: Any) -> Any:
    """The Python value of an A_Const (string, number, bool, None), else ``...``."""
    kind, node = unwrap(expr)
    if kind != "A_Const":
        return ...
    if node.get("isnull"):
        return None
    for key in ("sval", "ival", "fval", "boolval", "bsval"):
        if key in node:
            inner = node[key]
            value = inner.get(key, 0 if key == "ival" else False if key == "boolval" else "")
            return value
    return ...


def option_true(value: Any) -> bool:
    """A DefElem argument read as PostgreSQL's ``defGetBoolean`` reads it (no arg = true)."""
    if value is None:
        return True
    kind, node = unwrap(value)
    if kind == "Integer":
        return node.get("ival", 0) != 0
    if kind == "Boolean":
        return bool(node.get("boolval", False))
    text = str(node.get("sval", "")).lower()
    return text not in ("false", "off", "no", "0", "f", "n")


def options(items: list[Any] | None) -> dict[str, Any]:
    """DefElem list -> {name: raw arg node or None}."""
    out: dict[str, Any] = {}
    for item in items or ():
        kind, node = unwrap(item)
        if kind == "DefElem":
            out[node.get("defname", "")] = node.get("arg")
    return out


# ---------------------------------------------------------------------------- constants
def fold_string(expr: Any) -> str | None:
    """The string a constant SQL expression evaluates to: literals, ``||``, ``concat()``,
    ``format()`` with constant arguments, casts to text; None when it is not constant."""
    kind, node = unwrap(expr)
    value = const_value(expr)
    if value is not ... and value is not None:
        return str(value) if not isinstance(value, bool) else ("true" if value else "false")
    if kind == "TypeCast":
        return fold_string(node.get("arg"))
    if kind == "A_Expr" and strings(node.get("name")) == ["||"]:
        left, right = fold_string(node.get("lexpr")), fold_string(node.get("rexpr"))
        return None if left is None or right is None else left + right
    if kind == "FuncCall":
        name = strings(node.get("funcname"))[-1:]
        args = [fold_string(a) for a in node.get("args", ())]
        if any(a is None for a in args):
            return None
        if name == ["concat"]:
            return "".join(a or "" for a in args)
        if name == ["format"] and args:
            return _format(args[0] or "", [a or "" for a in args[1:]])
        if name == ["quote_ident"] and len(args) == 1:
            return quote_ident(args[0] or "")
    return None


def quote_ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _format(template: str, args: list[str]) -> str | None:
    """PostgreSQL's ``format()`` for %s, %I, %L and %% (positional ``%n$`` too)."""
    out, i, n = [], 0, 0
    while i < len(template):
        c = template[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        m = re.match(r"%(?:(\d+)\$)?([sIL%])", template[i:])
        if m is None:
            return None
        if m.group(2) == "%":
            out.append("%")
        else:
            index = int(m.group(1)) - 1 if m.group(1) else n
            n = index + 1
            if index >= len(args):
                return None
            arg = args[index]
            out.append(arg if m.group(2) == "s" else quote_ident(arg) if m.group(2) == "I"
                       else "'" + arg.replace("'", "''") + "'")
        i += len(m.group())
    return "".join(out)


# ---------------------------------------------------------------------------- PL/pgSQL
@dataclass(frozen=True, slots=True)
class PlStatement:
    """A statement a PL/pgSQL body runs: its SQL, or None with the reason it is dynamic."""

    sql: str | None
    line_offset: int  # lines from the start of the body
    problem: str | None = None
    syntax: bool = False  # the body itself does not parse (rather than: dynamic SQL)


def plpgsql_statements(body: str) -> list[PlStatement]:
    """The SQL a ``DO`` block (or function body) runs, in order; dynamic ``EXECUTE`` of a
    string that is not constant becomes a :class:`PlStatement` with ``problem`` set."""
    tag = "$phasegate_body$"
    while tag in body:
        tag = tag[:-1] + "x$"
    wrapper = f"CREATE FUNCTION phasegate_do() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
    try:
        tree = _loads(parse_plpgsql_json(wrapper))
    except ParseError as exc:
        return [PlStatement(None, 0, f"PL/pgSQL body does not parse: "
                                     f"{exc.args[0] if exc.args else exc}", syntax=True)]
    out: list[PlStatement] = []
    for kind, node in walk(tree):
        line = max(0, int(node.get("lineno", 1)) - 1)
        if kind in ("PLpgSQL_stmt_execsql", "PLpgSQL_stmt_perform"):
            expr = node.get("sqlstmt") or node.get("expr")
            query = unwrap(expr)[1].get("query")
            if query:
                out.append(PlStatement(query, line))
        elif kind in ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "PLpgSQL_stmt_open",
                      "PLpgSQL_stmt_return_query"):
            expr = node.get("query") or node.get("dynquery")
            if expr is None:
                continue  # OPEN / RETURN QUERY of a static query: read-only
            query = unwrap(expr)[1].get("query", "")
            sql = _constant_query(query)
            if sql is None:
                out.append(PlStatement(None, line, f"EXECUTE {' '.join(query.split())[:80]}"))
            else:
                out.append(PlStatement(sql, line))
        elif kind == "PLpgSQL_stmt_call":
            query = unwrap(node.get("expr"))[1].get("query")
            if query:
                out.append(PlStatement(query, line))
    out.sort(key=lambda s: s.line_offset)
    return out


def _constant_query(expr_text: str) -> str | None:
    try:
        stmts = parse("SELECT " + expr_text)
    except SyntaxProblem:
        return None
    targets = stmts[0].node.get("targetList", []) if stmts else []
    if len(targets) != 1:
        return None
    return fold_string(unwrap(targets[0])[1].get("val"))
