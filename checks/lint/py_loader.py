"""A revision file -> :class:`Revision` (its phase, chain ids, statements, suppressions).

The module body is run first for its definitions only (imports, constants, functions,
SQLAlchemy objects such as ``pg.ENUM(...)``); then ``upgrade()`` and ``downgrade()`` are run
for their statements. Project modules the revision imports are read the same way, on
demand (``ModuleLoader``). Nothing here raises on any input: a file that does not parse is
a :class:`Revision` with ``problem`` set, a revision that computes without end is cut off
with a "cannot verify" statement.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.lint import py_values as v
from checks.lint.inputs import CouldNotLint, read_text
from checks.lint.py_interp import OutOfBudget, Return
from checks.lint.python_source import RevisionReader, Stmt
from checks.lint.sql_tree import deep

SUPPRESS = re.compile(
    r"phasegate-lint:\s*ignore\[(?P<ids>[A-Za-z0-9_, ]*)\]\s*(?:reason:\s*(?P<reason>.*\S))?")
PHASE = re.compile(r"phasegate-lint:\s*phase\s*[=:]\s*(?P<phase>\w+)")


@dataclass(frozen=True)
class Suppression:
    line: int
    rule_ids: tuple[str, ...]
    reason: str | None


@dataclass
class Revision:
    """A migration file, reduced to what the rules need."""

    path: Path
    phase: str
    revision: str | None = None
    down_revision: Any = None
    statements: list[Stmt] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    problem: tuple[int, str] | None = None  # (line, message): the file does not parse
    transaction_per_migration: bool | None = None  # env.py, when this file is an env.py


def suppressions(text: str, comment: str = "#") -> list[Suppression]:
    """Every ``phasegate-lint: ignore[...]`` comment with its line."""
    if "phasegate-lint" not in text:
        return []
    if comment == "#":
        try:
            tokens = tokenize.generate_tokens(io.StringIO(text).readline)
            comments = [(tk.start[0], tk.string) for tk in tokens if tk.type == tokenize.COMMENT]
        except (tokenize.TokenError, SyntaxError):
            comments = []
    else:
        comments = [(text.count("\n", 0, m.start()) + 1, m.group())
                    for m in re.finditer(r"--[^\n]*phasegate-lint[^\n]*|/\*.*?phasegate-lint.*?\*/",
                                         text, re.S)]
    out = []
    for line, body in comments:
        m = SUPPRESS.search(body)
        if m:
            ids = tuple(i.strip().upper() for i in m["ids"].split(",") if i.strip())
            out.append(Suppression(line, ids, m["reason"]))
    return out


def parse_python(text: str, path: Path) -> ast.Module | tuple[int, str]:
    """The module's tree, or (line, message) when it does not parse."""
    try:
        return ast.parse(text, str(path))
    except SyntaxError as exc:
        return (exc.lineno or 1, f"Python syntax error: {exc.msg}")
    except (ValueError, MemoryError) as exc:
        return (1, f"Python source cannot be parsed: {exc}")
    except RecursionError:
        try:
            return deep(lambda: ast.parse(text, str(path)))
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            return (getattr(exc, "lineno", None) or 1, f"Python source nested too deeply: {exc}")


class ModuleLoader:
    """Finds and reads (never imports) the project modules a revision imports, so their
    helper functions can be followed. Looks in the revision's folder and its parents."""

    def __init__(self, revision: Path) -> None:
        self.revision = revision
        self.cache: dict[str, v.Scope | str | None] = {}

    def absolute(self, node: ast.ImportFrom, current: str) -> str:
        if not node.level:
            return node.module or ""
        if current == "__revision__":  # a revision is not a package module: relative to its folder
            return "." * node.level + (node.module or "")
        base = current.split(".")[: max(0, len(current.split(".")) - node.level)]
        return ".".join([*base, *([node.module] if node.module else [])])

    def _locate(self, dotted: str) -> Path | None:
        level = len(dotted) - len(dotted.lstrip("."))
        parts = [p for p in dotted.lstrip(".").split(".") if p]
        folders = [self.revision.parent.parents[level - 2]] if level > 1 else \
            [self.revision.parent] if level == 1 else [self.revision.parent, *self.revision.parent.parents][:8]
        for folder in folders:
            for candidate in (folder.joinpath(*parts).with_suffix(".py") if parts else None,
                              folder.joinpath(*parts, "__init__.py")):
                if candidate is not None and candidate.is_file():
                    return candidate
        return None

    def function(self, path: str) -> v.Function | str | None:
        """``pkg.mod.name`` as a Function; None when the module is not in the project (a
        library); otherwise the reason it cannot be read."""
        module, _, name = path.rpartition(".")
        if module not in self.cache:
            self.cache[module] = "a module that imports itself"  # cut import cycles
            found = self._locate(module) if module else None
            self.cache[module] = None if found is None else self._scope(found, module)
        scope = self.cache[module]
        if scope is None or isinstance(scope, str):
            return scope
        fn = scope.names.get(name)
        return fn if isinstance(fn, v.Function) else f"{module} (no function {name} there)"

    def _scope(self, path: Path, module: str) -> v.Scope | str:
        try:
            text = read_text(path)
        except CouldNotLint as exc:
            return str(exc)
        tree = parse_python(text, path)
        if isinstance(tree, tuple):
            return f"{path} (line {tree[0]}: {tree[1]})"
        return module_scope(tree, module, RevisionReader(path, self))


def module_scope(tree: ast.Module, name: str, reader: RevisionReader) -> v.Scope:
    """Run a module's body for its definitions (no statement is collected)."""
    scope = v.Scope({"__name__": name})
    reader.collect = False
    try:
        for node in tree.body:
            try:
                reader.stmt(node, scope)
            except (Return, OutOfBudget):
                break
            except Exception:  # noqa: BLE001 - a definition the linter cannot evaluate
                continue
    finally:
        reader.collect = True
    return scope


def read_revision(path: Path, text: str) -> Revision:
    """Everything the rules need from one ``.py`` revision."""
    tree = parse_python(text, path)
    if isinstance(tree, tuple):
        return Revision(path, "unknown", problem=tree)
    try:
        return _read(path, text, tree)
    except RecursionError:
        return deep(lambda: _read(path, text, tree))


def _read(path: Path, text: str, tree: ast.Module) -> Revision:
    reader = RevisionReader(path, ModuleLoader(path))
    scope = module_scope(tree, "__revision__", reader)
    phase = scope.names.get("phase")
    rev = Revision(path, phase if isinstance(phase, str) else "unknown",
                   revision=_static(scope.names.get("revision")),
                   down_revision=_static(scope.names.get("down_revision")),
                   suppressions=suppressions(text),
                   transaction_per_migration=_transaction_per_migration(tree))
    for name in ("upgrade", "downgrade"):
        fn = scope.names.get(name)
        if name in scope.names and not isinstance(fn, v.Function):
            # e.g. upgrade = make_upgrade(): Alembic calls it, the linter cannot read it
            reader.function = name
            reader.unverifiable(_binding(tree, name), name,
                                f"{name} is {v.why(fn, 'not a function the linter can read')}")
            continue
        if not isinstance(fn, v.Function):
            continue
        reader.function, reader.in_txn, reader.helper = name, True, 0
        reader.steps = 0
        try:
            reader.invoke(fn, [], {})
        except OutOfBudget:
            reader.unverifiable(fn.node, name, f"{name}() computes more than the linter follows "
                                "statically")
        except RecursionError:
            raise
        except Exception as exc:  # noqa: BLE001 - a revision the interpreter cannot follow
            reader.unverifiable(fn.node, name, f"the linter could not follow {name}() "
                                f"({type(exc).__name__})")
    rev.statements = reader.out
    return rev


def _binding(tree: ast.Module, name: str) -> ast.AST:
    """The last top-level statement that binds ``name`` (for the line of a finding)."""
    found: ast.AST = tree.body[0] if tree.body else tree
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) or \
                (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name):
            found = node
    return found


def _static(value: Any) -> Any:
    return value if v.static(value) else None


def _transaction_per_migration(tree: ast.Module) -> bool | None:
    """For an env.py: the ``transaction_per_migration=`` passed to ``context.configure``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "configure":
            for kw in node.keywords:
                if kw.arg == "transaction_per_migration":
                    return isinstance(kw.value, ast.Constant) and kw.value.value is True
            return False
    return None
