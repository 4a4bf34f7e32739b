"""Lint migration files: gather them, read each (``.py`` revisions with ``py_loader``,
``.sql`` scripts with ``sql_split``), and run every statement through ``sql_rules``.

Files of one folder are linted in chain order (``revision`` / ``down_revision``) and share
what they teach about the schema (a CHECK validated by one revision lets a later SET NOT
NULL through). When the folder's Alembic ``env.py`` does not set
``transaction_per_migration=True``, Alembic runs every revision of an upgrade in one
transaction, so the transaction state carries from one revision to the next too.

Nothing here raises for any input except :class:`~checks.lint.inputs.CouldNotLint` (a file
that cannot be read at all: ``invoke lint`` exits 2 with one line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from checks.lint import sql_tree
from checks.lint.findings import Collector, Finding
from checks.lint.inputs import CouldNotLint, describe, read_text
from checks.lint.py_loader import PHASE, Revision, parse_python, read_revision, suppressions
from checks.lint.sql_rules import StatementLinter, Where
from checks.lint.sql_split import Splitter
from checks.lint.state import Schema, Session, Txn, Unit

# psql meta-commands that run SQL the linter does not see.
_UNSEEN = {"i": "\\i includes another file", "ir": "\\ir includes another file",
           "include": "\\include includes another file",
           "include_relative": "\\include_relative includes another file",
           "gexec": "\\gexec runs the query's results as SQL", "!": "\\! runs a shell command",
           "copy": "\\copy runs a COPY the linter does not read"}
_RECONNECT = {"c", "connect"}
_PSQL_VARIABLE = re.compile(r"(?<![:\w]):['\"]?[A-Za-z_]")


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def default_paths() -> list[Path]:
    """The revisions the kit ships."""
    root = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    return sorted(root.glob("*.py"))


def expand(paths: Iterable[Path | str]) -> list[Path]:
    """Files to lint: directories become their ``*.py`` and ``*.sql`` (an Alembic folder,
    its ``versions/``); anything that is not a regular file is refused."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            folder = p / "versions" if (p / "env.py").is_file() and (p / "versions").is_dir() else p
            found = sorted([*folder.glob("*.py"), *folder.glob("*.sql")])
            found = [f for f in found if f.name != "__init__.py"]
            for f in found:
                problem = describe(f)
                if problem:
                    raise CouldNotLint(f"{f}: {problem}, not a migration file; refused")
            if not found:
                raise CouldNotLint(f"{p}: no migration files (*.py, *.sql) in it")
            files += found
        elif not p.exists() and not p.is_symlink():
            raise CouldNotLint(f"{p}: no such file or directory")
        else:
            files.append(p)
    return files


def lint_paths(paths: Iterable[Path | str] | None = None) -> list[Finding]:
    """Lint migration files (``.py`` revisions or ``.sql``); directories are expanded."""
    return lint(expand(default_paths() if paths is None else paths)).findings


def lint(files: list[Path], report: set[Path] | None = None) -> LintResult:
    """Lint ``files`` (in chain order per folder); with ``report``, files outside it are read
    for context only (their findings dropped, an unreadable one skipped)."""
    result = LintResult()
    groups: dict[Path, list[Path]] = {}
    for f in files:
        groups.setdefault(f.parent, []).append(f)
    for folder, members in groups.items():
        _Run(folder, result, report).lint(members)
    return result


class _Run:
    """One folder's files, sharing schema facts (and, without transaction_per_migration,
    the open transaction)."""

    def __init__(self, folder: Path, result: LintResult, report: set[Path] | None) -> None:
        self.result, self.report = result, report
        self.schema = Schema()
        self.shared_txn = _shared_transaction(folder)
        self.txn: Txn | None = None

    def reported(self, path: Path) -> bool:
        return self.report is None or path.resolve() in self.report

    def lint(self, files: list[Path]) -> None:
        sources: list[tuple[Path, str | Revision]] = []
        for path in files:
            try:
                text = read_text(path)
            except CouldNotLint:
                if self.reported(path):
                    raise
                continue
            try:
                sources.append((path, read_revision(path, text) if path.suffix == ".py" else text))
            except Exception as exc:  # noqa: BLE001 - as above
                raise CouldNotLint(f"{path}: could not lint: internal error "
                                   f"{type(exc).__name__}: {exc}") from exc
        for path, source in _chain_order(sources):
            try:
                findings = self.python(path, source) if isinstance(source, Revision) \
                    else self.sql(path, source)
            except Exception as exc:  # a linter bug: "could not lint" naming the file, not a trace
                raise CouldNotLint(f"{path}: could not lint: internal error "
                                   f"{type(exc).__name__}: {exc}") from exc
            if self.reported(path):
                self.result.files.append(path)
                self.result.findings += findings

    # ------------------------------------------------------------------ revisions
    def python(self, path: Path, rev: Revision) -> list[Finding]:
        out = Collector(str(path), rev.suppressions)
        if rev.problem is not None:
            out.add("PG019", rev.problem[0], rev.problem[0], "-", rev.problem[1], "")
            return out.done()
        own: set[str] = set()
        for function in ("upgrade", "downgrade"):
            unit = Unit(str(path), function, rev.phase, python=True,
                        own_tables=own if function == "downgrade" else set())
            carry = self.shared_txn and function == "upgrade" and self.txn is not None
            linter = StatementLinter(unit, self.schema, _emitter(out, function),
                                     txn=self.txn if carry else None)
            self.run_statements(linter, [s for s in rev.statements if s.function == function])
            if function == "upgrade":
                own = set(unit.new_tables)
                if self.shared_txn:
                    self.txn = _carried(linter.txn, path)
        return out.done()

    def run_statements(self, linter: StatementLinter, stmts: list) -> None:  # type: ignore[type-arg]
        previous: bool | None = None
        for stmt in stmts:
            where = Where(stmt.line, stmt.end_line, stmt.sql or "", stmt.helper, stmt.in_transaction)
            linter.where = where
            if stmt.event is not None:
                linter.add("PG020", f"connection.{stmt.event}() inside an Alembic revision ends "
                                    "its transaction: use autocommit_block()")
                linter.boundary()
                continue
            if stmt.sql is None:
                linter.add("PG018", f"cannot verify: {stmt.problem}: trace it or suppress with "
                                    "a reason")
                continue
            if previous is not None and stmt.in_transaction != previous or not stmt.in_transaction:
                linter.boundary()  # into or out of an autocommit block, or autocommit
            previous = stmt.in_transaction
            try:
                parsed = sql_tree.parse(stmt.sql)
            except sql_tree.SyntaxProblem as exc:
                linter.add("PG019", f"{stmt.origin}: {exc}")
                continue
            # Several statements in one string run as one implicit transaction.
            implicit = len(parsed) > 1
            for p in parsed:
                linter.statement(p, Where(stmt.line, stmt.end_line, stmt.sql, stmt.helper,
                                          stmt.in_transaction or implicit))
            if not stmt.in_transaction:
                linter.boundary()

    # ------------------------------------------------------------------ .sql scripts
    def sql(self, path: Path, text: str) -> list[Finding]:
        out = Collector(str(path), suppressions(text, "--"))
        header = PHASE.search(text[:4096])
        unit = Unit(str(path), "sql", header["phase"] if header else "expand", python=False)
        linter = StatementLinter(unit, self.schema, _emitter(out, "sql"), session=Session())
        splitter = Splitter(text)
        while (chunk := splitter.next_chunk()) is not None:
            linter.where = Where(chunk.line, chunk.end_line, chunk.text, in_txn=linter.block)
            if chunk.meta is not None:
                if chunk.meta in _UNSEEN:
                    linter.add("PG018", f"cannot verify: {_UNSEEN[chunk.meta]}: trace it or "
                                        "suppress with a reason")
                elif chunk.meta in _RECONNECT:
                    linter.session, linter.block = Session(), False
                    linter.boundary()
                continue
            try:
                parsed = sql_tree.parse(chunk.text)
            except sql_tree.SyntaxProblem as exc:
                line = chunk.line + exc.line_offset
                linter.where = Where(line, line, chunk.text, in_txn=linter.block)
                hint = " (psql variables such as :name are not SQL)" \
                    if _PSQL_VARIABLE.search(chunk.text) else ""
                linter.add("PG019", f"{exc}{hint}")
                continue
            for p in parsed:
                if not linter.block:
                    linter.boundary()  # autocommit: every statement is its own transaction
                line = chunk.line + p.line_offset
                linter.statement(p, Where(line, max(line, chunk.end_line), chunk.text,
                                          in_txn=linter.block))
                if p.kind == "CopyStmt" and p.node.get("is_from") and not p.node.get("filename"):
                    splitter.skip_copy_data()
        linter.finish()
        return out.done()


def _emitter(out: Collector, function: str):  # type: ignore[no-untyped-def]
    def emit(rule_id: str, message: str, where: Where) -> None:
        out.add(rule_id, where.line, where.end_line, function, message, where.text,
                first=min(where.anchor or where.line, where.line))
    return emit


def _carried(txn: Txn, path: Path) -> Txn:
    """The upgrade's open transaction, as the next revision of the same run inherits it."""
    return Txn(lock_timeout=txn.lock_timeout, locks=[f"{lk} in {path.name}" if " in " not in lk
                                                     else lk for lk in txn.locks],
               added=dict(txn.added), origin=" (env.py runs every revision in one transaction: "
                                             "no transaction_per_migration=True)")


def _shared_transaction(folder: Path) -> bool:
    """Whether the folder's env.py runs every revision in one transaction."""
    env = folder.parent / "env.py"
    if folder.name != "versions" or not env.is_file():
        return False
    try:
        tree = parse_python(read_text(env), env)
    except CouldNotLint:
        return False
    if isinstance(tree, tuple):
        return False
    from checks.lint.py_loader import _transaction_per_migration

    return _transaction_per_migration(tree) is False


def _chain_order(sources: list[tuple[Path, str | Revision]]) -> list[tuple[Path, str | Revision]]:
    """Revisions in the order Alembic applies them (down_revision before revision); files
    without a chain keep their name order, after the chain."""
    revs = {s.revision: (p, s) for p, s in sources if isinstance(s, Revision) and s.revision}
    children: dict[object, list[str]] = {}
    for rid, (_, s) in revs.items():
        downs = s.down_revision if isinstance(s.down_revision, list | tuple) else [s.down_revision]
        for down in downs:
            children.setdefault(down if down in revs else None, []).append(rid)
    ordered, seen = [], set()
    stack = sorted(children.get(None, []), reverse=True)
    while stack:
        rid = stack.pop()
        if rid in seen:
            continue
        seen.add(rid)
        ordered.append(revs[rid])
        stack.extend(sorted(children.get(rid, []), reverse=True))
    chained = {id(s) for _, s in ordered}
    return ordered + [(p, s) for p, s in sources if id(s) not in chained]
