"""SQL that runs SQL: ``DO`` blocks, and functions the migration creates and then calls.

Their statements are linted where they run (inside the calling statement's transaction:
a DO block is one statement). A constant ``EXECUTE 'ALTER TABLE ...'`` is linted like
any statement; ``EXECUTE`` of a string only known at run time is PG018 ("cannot verify"),
because it may take any lock or drop anything. A function body in another language is
PG018 too. Functions the migration does not create (built-ins, earlier migrations) are
trusted: the linter has no way to read them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from checks.lint import sql_tree as t

if TYPE_CHECKING:
    from checks.lint.sql_rules import StatementLinter

MAX_DEPTH = 8  # nested DO / function bodies followed; deeper is "cannot verify"


def lint_body(linter: StatementLinter, what: str, lang: str, body: str) -> None:
    """Lint the statements a PL/pgSQL or SQL body runs, at the current statement."""
    where = linter.where
    if linter.depth >= MAX_DEPTH:
        linter.add("PG018", f"cannot verify: {what} nests function bodies more than "
                            f"{MAX_DEPTH} deep: trace it or suppress with a reason")
        return
    if lang == "sql":
        pieces = [t.PlStatement(body, 0)]
    elif lang == "plpgsql":
        pieces = t.plpgsql_statements(body)
    else:
        linter.add("PG018", f"cannot verify: {what} is written in {lang}: trace it or "
                            "suppress with a reason")
        return
    linter.depth += 1
    try:
        for piece in pieces:
            # In a .sql file the body's lines are the file's; in a revision the SQL may be a
            # constant defined elsewhere, so its statements are reported at the call.
            line = where.line if linter.unit.python else where.line + piece.line_offset
            inner = replace(where, line=line, end_line=max(line, where.end_line), in_txn=True,
                            anchor=where.anchor or where.line)
            if piece.sql is None:
                linter.where = inner
                if piece.syntax:
                    linter.add("PG019", f"{what}: {piece.problem}")
                else:
                    linter.add("PG018", f"cannot verify: {what} runs dynamic SQL ({piece.problem}): "
                                        "trace it or suppress with a reason")
                continue
            try:
                parsed = t.parse(piece.sql)
            except t.SyntaxProblem as exc:
                linter.where = inner
                linter.add("PG019", f"{what}: {exc}")
                continue
            for p in parsed:
                linter.statement(p, replace(inner, text=piece.sql))
    finally:
        linter.depth -= 1
        linter.where = where


class DynamicRules:
    """Mixed into the statement linter."""

    def on_DoStmt(self: StatementLinter, node: dict[str, Any]) -> None:  # type: ignore[misc]  # noqa: N802
        opts = t.options(node.get("args"))
        body = str(t.unwrap(opts.get("as"))[1].get("sval", ""))
        lang = str(t.unwrap(opts.get("language"))[1].get("sval", "plpgsql")) \
            if "language" in opts else "plpgsql"
        lint_body(self, "DO block", lang.lower(), body)

    def on_CallStmt(self: StatementLinter, node: dict[str, Any]) -> None:  # type: ignore[misc]  # noqa: N802
        self.calls_functions(node)

    def on_InsertStmt(self: StatementLinter, node: dict[str, Any]) -> None:  # type: ignore[misc]  # noqa: N802
        self.calls_functions(node)  # INSERT ... SELECT f(): f's body runs now

    def calls_functions(self: StatementLinter, node: dict[str, Any]) -> None:  # type: ignore[misc]
        """Lint the body of every function this run created that ``node`` calls."""
        if not (self.calls and self.schema.functions):
            return
        for kind, call in t.walk(node):
            if kind != "FuncCall":
                continue
            name = (t.strings(call.get("funcname")) or [""])[-1]
            known = self.schema.functions.get(name)
            if known is not None:
                lint_body(self, f"function {name}()", known[0], known[1])

    def on_AlterDomainStmt(self: StatementLinter, node: dict[str, Any]) -> None:  # type: ignore[misc]  # noqa: N802
        name = ".".join(t.strings(node.get("typeName")))
        if name.split(".")[-1] in self.unit.created:
            return
        sub = node.get("subtype")
        if sub == "C":
            con = t.unwrap(node.get("def"))[1]
            if not con.get("skip_validation"):
                self.add("PG004", f"ALTER DOMAIN {name} ADD CONSTRAINT without NOT VALID checks "
                                  "every column of that domain")
        elif sub == "O":
            self.add("PG004", f"ALTER DOMAIN {name} SET NOT NULL checks every column of that domain")
