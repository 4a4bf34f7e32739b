"""A small, bounded interpreter for the Python a migration is written in.

It runs a revision's ``upgrade()`` / ``downgrade()`` over the values of ``py_values``: local
variables, module constants, f-strings, ``%`` and ``.format()``, ``"...".join(...)``,
comprehensions and ``for`` loops over static sequences (unrolled), helper functions
(inlined, with their arguments bound), ``if`` on a known condition (one branch) or an
unknown one (both branches: a statement in either may run). The semantics of calls
(``op.*``, connections, safe_ddl, SQLAlchemy) are the subclass's (``python_source``).
"""

from __future__ import annotations

import ast
from typing import Any

from checks.lint import py_values as v


class Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class Break(Exception):
    pass


class Continue(Exception):
    pass


class OutOfBudget(Exception):
    """The revision computes more than the linter is willing to follow."""


MAX_CALL_DEPTH = 24


class Evaluator:
    """Statements and expressions; :meth:`call` and :meth:`attribute` are the subclass's."""

    def __init__(self) -> None:
        self.steps = 0
        self.depth = 0

    # ------------------------------------------------------------------ hooks
    def call(self, node: ast.Call, callee: Any, args: list[Any], kwargs: dict[str, Any]) -> Any:
        raise NotImplementedError

    def attribute(self, obj: Any, name: str) -> Any:
        raise NotImplementedError

    def enter_with(self, node: ast.With | ast.AsyncWith, managers: list[Any], scope: v.Scope) -> None:
        self.block(node.body, scope)

    def bind_import(self, node: ast.Import | ast.ImportFrom, scope: v.Scope) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ statements
    def block(self, body: list[ast.stmt], scope: v.Scope) -> None:
        for stmt in body:
            self.stmt(stmt, scope)

    def stmt(self, node: ast.stmt, scope: v.Scope) -> None:  # noqa: C901 - one branch per node type
        if isinstance(node, ast.Expr):
            self.ev(node.value, scope)
        elif isinstance(node, ast.Assign):
            value = self.ev(node.value, scope)
            for target in node.targets:
                self.assign(target, value, scope)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, self.ev(node.value, scope), scope)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                current = scope.lookup(node.target.id)
                self.assign(node.target, v.binop(node.op, current, self.ev(node.value, scope)), scope)
        elif isinstance(node, ast.If):
            self.branch(node.test, node.body, node.orelse, scope)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.loop(node, scope)
        elif isinstance(node, ast.While):
            self.run_loop_body(node.body, scope)
        elif isinstance(node, ast.With | ast.AsyncWith):
            managers = []
            for item in node.items:
                manager = self.ev(item.context_expr, scope)
                managers.append(manager)
                if item.optional_vars is not None:
                    self.assign(item.optional_vars, self.entered(manager), scope)
            self.enter_with(node, managers, scope)
        elif isinstance(node, ast.Try | ast.TryStar):
            self.block(node.body, scope)
            for handler in node.handlers:
                self.block(handler.body, scope)
            self.block(node.orelse, scope)
            self.block(node.finalbody, scope)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scope.names[node.name] = v.Function(node, scope, self.module_name(scope))
        elif isinstance(node, ast.Return):
            raise Return(self.ev(node.value, scope) if node.value is not None else None)
        elif isinstance(node, ast.Raise):
            raise Return(v.Unknown("a function that raises"))  # nothing after it runs
        elif isinstance(node, ast.Break):
            raise Break
        elif isinstance(node, ast.Continue):
            raise Continue
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self.bind_import(node, scope)
        elif isinstance(node, ast.Match):
            self.ev(node.subject, scope)
            for case in node.cases:
                self.guarded(case.body, scope)
        # pass, global, nonlocal, delete, assert, class definitions: nothing runs SQL

    def module_name(self, scope: v.Scope) -> str:
        while scope.parent is not None:
            scope = scope.parent
        return str(scope.names.get("__name__", ""))

    def entered(self, manager: Any) -> Any:
        """What ``with manager as x`` binds ``x`` to."""
        return manager

    def guarded(self, body: list[ast.stmt], scope: v.Scope) -> None:
        """A block that may or may not run: a return or raise in it ends only the block."""
        try:
            self.block(body, scope)
        except Return:
            pass

    def branch(self, test: ast.expr, body: list[ast.stmt], orelse: list[ast.stmt],
               scope: v.Scope) -> None:
        cond = self.ev(test, scope)
        if v.static(cond):
            self.block(body if cond else orelse, scope)
            return
        self.guarded(body, scope)
        self.guarded(orelse, scope)

    def loop(self, node: ast.For | ast.AsyncFor, scope: v.Scope) -> None:
        items = v.iterate(self.ev(node.iter, scope))
        if items is None:  # unknown iterable: the body once, with an unknown loop variable
            self.assign(node.target, v.Unknown("a loop variable over run-time values"), scope)
            self.run_loop_body(node.body, scope)
            return
        for item in items:
            self.assign(node.target, item, scope)
            try:
                self.block(node.body, scope)
            except Break:
                return
            except Continue:
                continue
        self.block(node.orelse, scope)

    def run_loop_body(self, body: list[ast.stmt], scope: v.Scope) -> None:
        try:
            self.guarded(body, scope)
        except (Break, Continue):
            pass

    def assign(self, target: ast.expr, value: Any, scope: v.Scope) -> None:
        if isinstance(target, ast.Name):
            scope.names[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            items = v.iterate(value) if not isinstance(value, str) else None
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Starred):
                    self.assign(elt.value, v.Unknown("a starred assignment"), scope)
                    continue
                item = items[i] if items is not None and i < len(items) else \
                    v.Unknown(v.why(value, "an unpacked run-time value"))
                self.assign(elt, item, scope)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value, scope)
        # attribute and subscript targets: the linter does not track object state

    # ------------------------------------------------------------------ expressions
    def ev(self, node: ast.expr | None, scope: v.Scope) -> Any:  # noqa: C901 - one branch per node type
        if node is None:
            return None
        self.steps += 1
        if self.steps > v.MAX_STEPS:
            raise OutOfBudget
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return scope.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.ev(node.value, scope), node.attr)
        if isinstance(node, ast.Call):
            return self.ev_call(node, scope)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    spec = self.ev(part.format_spec, scope) if part.format_spec else None
                    value = v.format_value(self.ev(part.value, scope), part.conversion, spec)
                else:
                    value = self.ev(part, scope)
                parts.append(value)
            if not all(isinstance(p, str) for p in parts):
                return v.Unknown(v.why(parts, "an f-string of run-time values"))
            joined = "".join(parts)
            return v.Unknown("a string too large to build") if v.too_big(joined) else joined
        if isinstance(node, ast.BinOp):
            return v.binop(node.op, self.ev(node.left, scope), self.ev(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            operand = self.ev(node.operand, scope)
            if not v.static(operand):
                return v.Unknown(v.why(operand))
            try:
                return {ast.Not: lambda x: not x, ast.USub: lambda x: -x, ast.UAdd: lambda x: +x,
                        ast.Invert: lambda x: ~x}[type(node.op)](operand)
            except Exception:  # noqa: BLE001
                return v.Unknown("an expression that fails when evaluated")
        if isinstance(node, ast.BoolOp):
            return self.boolop(node, scope)
        if isinstance(node, ast.Compare):
            return v.compare(node.ops, [self.ev(node.left, scope),
                                        *(self.ev(c, scope) for c in node.comparators)])
        if isinstance(node, ast.IfExp):
            cond = self.ev(node.test, scope)
            if v.static(cond):
                return self.ev(node.body if cond else node.orelse, scope)
            body, orelse = self.ev(node.body, scope), self.ev(node.orelse, scope)
            return body if body == orelse and v.static(body) else v.Unknown(v.why(cond))
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = self.sequence(node.elts, scope)
            return list(items) if isinstance(node, ast.List) else tuple(items) \
                if isinstance(node, ast.Tuple) else (set(items) if v.static(items) else items)
        if isinstance(node, ast.Dict):
            out = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    extra = self.ev(value, scope)
                    if isinstance(extra, dict):
                        out.update(extra)
                    continue
                k = self.ev(key, scope)
                if v.static(k):
                    out[k] = self.ev(value, scope)
            return out
        if isinstance(node, ast.Subscript):
            return self.subscript(self.ev(node.value, scope), node.slice, scope)
        if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            elts = self.comprehension(node.generators, [node.elt], scope)
            return v.Unknown("a comprehension over run-time values") if elts is None else elts
        if isinstance(node, ast.DictComp):
            pairs = self.comprehension(node.generators, [node.key, node.value], scope)
            return v.Unknown("a comprehension over run-time values") if pairs is None else \
                dict(zip(pairs[::2], pairs[1::2], strict=True))
        if isinstance(node, ast.Lambda):
            return v.Function(node, scope, self.module_name(scope))
        if isinstance(node, ast.NamedExpr):
            value = self.ev(node.value, scope)
            self.assign(node.target, value, scope)
            return value
        if isinstance(node, ast.Starred):
            return self.ev(node.value, scope)
        return v.Unknown(f"a {type(node).__name__} expression")

    def boolop(self, node: ast.BoolOp, scope: v.Scope) -> Any:
        result: Any = None
        for value_node in node.values:
            result = self.ev(value_node, scope)
            if not v.static(result):
                return v.Unknown(v.why(result))
            if isinstance(node.op, ast.And) and not result:
                return result
            if isinstance(node.op, ast.Or) and result:
                return result
        return result

    def sequence(self, elts: list[ast.expr], scope: v.Scope) -> list[Any]:
        out: list[Any] = []
        for elt in elts:
            if isinstance(elt, ast.Starred):
                items = v.iterate(self.ev(elt.value, scope))
                out.extend(items if items is not None else [v.Unknown("a starred run-time value")])
            else:
                out.append(self.ev(elt, scope))
        return out

    def subscript(self, container: Any, index_node: ast.expr, scope: v.Scope) -> Any:
        if isinstance(index_node, ast.Slice):
            parts = [self.ev(p, scope) for p in (index_node.lower, index_node.upper, index_node.step)]
            index: Any = slice(*parts) if v.static(parts) else v.Unknown("a run-time slice")
        else:
            index = self.ev(index_node, scope)
        if isinstance(container, list | tuple | str | dict) and not isinstance(index, v.Unknown):
            try:
                return container[index]
            except Exception:  # noqa: BLE001
                return v.Unknown("a subscript that fails when evaluated")
        if isinstance(container, list | tuple | str | dict):
            return v.Unknown(v.why(index))
        return v.Unknown(f"{self.describe(container)}[...]")

    def describe(self, value: Any) -> str:
        return v.why(value)

    def comprehension(self, generators: list[ast.comprehension], elts: list[ast.expr],
                      scope: v.Scope) -> list[Any] | None:
        inner = v.Scope({}, scope)
        out: list[Any] = []

        def run(level: int) -> bool:
            if level == len(generators):
                out.extend(self.ev(e, inner) for e in elts)
                return len(out) <= v.MAX_ITEMS
            gen = generators[level]
            items = v.iterate(self.ev(gen.iter, inner))
            if items is None:
                return False
            for item in items:
                self.assign(gen.target, item, inner)
                conds = [self.ev(c, inner) for c in gen.ifs]
                if not v.static(conds):
                    return False
                if all(conds) and not run(level + 1):
                    return False
            return True

        return out if run(0) else None

    def ev_call(self, node: ast.Call, scope: v.Scope) -> Any:
        callee = self.ev(node.func, scope)
        args = self.sequence(node.args, scope)
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            value = self.ev(kw.value, scope)
            if kw.arg is None:
                if isinstance(value, dict):
                    kwargs.update({str(k): val for k, val in value.items()})
            else:
                kwargs[kw.arg] = value
        return self.call(node, callee, args, kwargs)

    def invoke(self, fn: v.Function, args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Run a function the revision defines, with its arguments bound."""
        if self.depth >= MAX_CALL_DEPTH:
            return v.Unknown("a call nested too deeply to follow")
        scope = v.Scope({}, fn.scope)
        a = fn.node.args
        positional = [*a.posonlyargs, *a.args]
        defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
        for i, param in enumerate(positional):
            if i < len(args):
                value = args[i]
            elif param.arg in kwargs:
                value = kwargs.pop(param.arg)
            elif defaults[i] is not None:
                value = self.ev(defaults[i], fn.scope)
            else:
                value = v.Unknown(f"parameter {param.arg}")
            scope.names[param.arg] = value
        if a.vararg is not None:
            scope.names[a.vararg.arg] = tuple(args[len(positional):])
        for param, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
            scope.names[param.arg] = kwargs.pop(param.arg) if param.arg in kwargs else (
                self.ev(default, fn.scope) if default is not None else v.Unknown(f"parameter {param.arg}"))
        if a.kwarg is not None:
            scope.names[a.kwarg.arg] = dict(kwargs)
        self.depth += 1
        try:
            if isinstance(fn.node, ast.Lambda):
                return self.ev(fn.node.body, scope)
            self.block(fn.node.body, scope)
            return None
        except Return as ret:
            return ret.value
        except (Break, Continue):
            return None
        finally:
            self.depth -= 1
