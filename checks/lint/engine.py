"""Apply the rules of ``rules.py`` to the statements of ``source.py``.

State carried through a revision function, in order: tables created in this revision
("new": nobody else can see them yet, so locks on them are harmless), whether
``lock_timeout`` is set for the current transaction or session, and which constraints were
added in the current transaction. In a downgrade, the tables the same revision's upgrade
created are also exempt from the lock rules: the rollout moves the application off them
(flags back) before it downgrades.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pglast import enums, parse_sql
from pglast.parser import ParseError

from checks.lint.rules import RULES
from checks.lint.source import Source, Stmt, load

AT = enums.AlterTableType
CT = enums.ConstrType
OT = enums.ObjectType

VOLATILE = {"random", "clock_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v1",
            "uuid_generate_v4", "nextval", "txid_current", "setseed", "random_normal"}
LOCKLESS = {"CreateFunctionStmt", "CreateEnumStmt", "CompositeTypeStmt", "AlterEnumStmt",
            "VariableSetStmt", "SelectStmt", "CreateSchemaStmt", "CreateExtensionStmt",
            "CommentStmt", "CreateSeqStmt", "DefineStmt", "CreateDomainStmt", "DoStmt",
            "InsertStmt", "UpdateStmt", "DeleteStmt", "TransactionStmt", "CreateStmt",
            "ViewStmt", "GrantStmt", "GrantRoleStmt", "CreateRoleStmt", "AlterRoleStmt"}


@dataclass(frozen=True)
class Finding:
    """One rule broken at one place."""

    rule_id: str
    path: str
    line: int
    function: str
    message: str
    statement: str
    severity: str

    def to_dict(self) -> dict[str, Any]:
        rule = RULES[self.rule_id]
        return {"rule": self.rule_id, "title": rule.title, "path": self.path, "line": self.line,
                "function": self.function, "message": self.message, "statement": self.statement,
                "severity": self.severity, "why": rule.why, "instead": rule.instead}


@dataclass
class _State:
    phase: str
    function: str
    new_tables: set[str] = field(default_factory=set)
    own_tables: set[str] = field(default_factory=set)
    new_indexes: set[str] = field(default_factory=set)
    txn_lock_timeout: bool = False
    session_lock_timeout: bool = False
    added_in_txn: set[str] = field(default_factory=set)
    in_txn: bool = True

    def exempt(self, table: str | None) -> bool:
        return table is not None and (table in self.new_tables or table in self.own_tables)


def _name(node: Any) -> str | None:
    return getattr(node, "relname", None)


def _func_names(node: Any) -> Iterator[str]:
    """Names of every function called inside a parse-tree node."""
    if node is None:
        return
    if type(node).__name__ == "FuncCall":
        yield node.funcname[-1].sval
    if isinstance(node, tuple | list):
        for item in node:
            yield from _func_names(item)
        return
    for slot in getattr(node, "__slots__", ()):
        child = getattr(node, slot, None)
        if child is not None and not isinstance(child, str | int | float | bool):
            yield from _func_names(child)


class _Linter:
    def __init__(self, src: Source) -> None:
        self.src = src
        self.findings: list[Finding] = []
        self.stmt: Stmt | None = None
        self.sql = ""

    def add(self, rule_id: str, message: str) -> None:
        assert self.stmt is not None
        self.findings.append(Finding(rule_id, str(self.src.path), self.stmt.line, self.stmt.function,
                                     message, " ".join(self.sql.split())[:200],
                                     RULES[rule_id].severity))

    def run(self) -> list[Finding]:
        own = {t for s in self.src.statements if s.function == "upgrade" and s.sql
               for t in _created_tables(s.sql)}
        for function in ("upgrade", "downgrade"):
            state = _State(self.src.phase, function, own_tables=own if function == "downgrade" else set())
            for stmt in (s for s in self.src.statements if s.function == function):
                self.statement(stmt, state)
        return self.findings

    def statement(self, stmt: Stmt, st: _State) -> None:
        self.stmt, self.sql = stmt, stmt.sql or ""
        if stmt.in_transaction != st.in_txn or not stmt.in_transaction:
            st.txn_lock_timeout, st.added_in_txn = False, set()  # a transaction boundary
        st.in_txn = stmt.in_transaction
        if stmt.sql is None:
            self.add("PG018", f"{stmt.origin}(...) with SQL the linter cannot resolve statically")
            return
        try:
            raws = parse_sql(stmt.sql)
        except ParseError as exc:
            self.add("PG018", f"SQL does not parse: {exc}")
            return
        for raw in raws:
            node = raw.stmt
            kind = type(node).__name__
            table = self.target(node)
            if self.takes_lock(node, kind) and not st.exempt(table) and not (
                    stmt.helper or st.txn_lock_timeout or st.session_lock_timeout):
                self.add("PG011", f"{_verb(kind)} on {table or 'a table'} without lock_timeout")
            handler = getattr(self, f"on_{kind}", None)
            if handler is not None:
                handler(node, st, table)

    @staticmethod
    def target(node: Any) -> str | None:
        rel = getattr(node, "relation", None)
        if rel is not None:
            return _name(rel)
        if type(node).__name__ == "DropStmt" and node.removeType == OT.OBJECT_TABLE:
            return node.objects[0][-1].sval
        return None

    @staticmethod
    def takes_lock(node: Any, kind: str) -> bool:
        if kind in LOCKLESS:
            return False
        if kind == "DropStmt":
            return node.removeType in (OT.OBJECT_TABLE, OT.OBJECT_INDEX)
        return kind in {"AlterTableStmt", "IndexStmt", "RenameStmt", "CreateTrigStmt",
                        "LockStmt", "TruncateStmt", "ClusterStmt", "ReindexStmt", "VacuumStmt"}

    # ------------------------------------------------------------ one handler per statement
    def on_VariableSetStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if node.name == "lock_timeout":
            if node.is_local:
                st.txn_lock_timeout = True
            else:
                st.session_lock_timeout = True

    def on_CreateStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if table:
            st.new_tables.add(table)
        for elt in node.tableElts or ():
            if type(elt).__name__ == "ColumnDef":
                self.column_type(elt)

    def on_IndexStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if st.exempt(table):
            st.new_indexes.add(node.idxname or "")
            return
        if node.concurrent and st.in_txn:
            self.add("PG003", f"CREATE INDEX CONCURRENTLY {node.idxname} inside the transaction")
        elif not node.concurrent:
            self.add("PG001", f"CREATE INDEX {node.idxname} on existing table {table}")

    def on_DropStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if node.removeType == OT.OBJECT_INDEX:
            names = [o[-1].sval for o in node.objects]
            if all(n in st.new_indexes for n in names):
                return
            if node.concurrent and st.in_txn:
                self.add("PG003", f"DROP INDEX CONCURRENTLY {', '.join(names)} inside the transaction")
            elif not node.concurrent:
                self.add("PG002", f"DROP INDEX {', '.join(names)} without CONCURRENTLY")
        elif node.removeType == OT.OBJECT_TABLE and not st.exempt(table):
            self.drop(st, f"DROP TABLE {table}")

    def drop(self, st: _State, what: str) -> None:
        if st.function == "upgrade" and st.phase != "contract":
            self.add("PG010", f"{what} in a {st.phase} revision")

    def on_RenameStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if node.renameType in (OT.OBJECT_COLUMN, OT.OBJECT_TABLE) and not st.exempt(table):
            what = "column" if node.renameType == OT.OBJECT_COLUMN else "table"
            self.add("PG009", f"rename of {what} {node.subname or table} to {node.newname}")

    def on_TruncateStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        self.add("PG016", "TRUNCATE " + ", ".join(_name(r) or "?" for r in node.relations))

    def on_LockStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        self.add("PG015", "explicit LOCK TABLE")

    def on_ClusterStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        self.add("PG015", "CLUSTER rewrites the table")

    def on_VacuumStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if any(o.defname == "full" for o in node.options or ()):
            self.add("PG015", "VACUUM FULL rewrites the table")

    def on_ReindexStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        if not any(o.defname == "concurrently" for o in node.params or ()):
            self.add("PG015", "REINDEX without CONCURRENTLY")

    def on_AlterTableStmt(self, node: Any, st: _State, table: str | None) -> None:  # noqa: N802
        for cmd in node.cmds:
            if st.exempt(table):
                if cmd.subtype == AT.AT_AddColumn:
                    self.column_type(cmd.def_)
                continue
            self.alter_cmd(cmd, st, table)

    def alter_cmd(self, cmd: Any, st: _State, table: str | None) -> None:
        sub = cmd.subtype
        if sub == AT.AT_AddColumn:
            self.add_column(cmd.def_, table)
        elif sub == AT.AT_AlterColumnType:
            self.add("PG008", f"type change of {table}.{cmd.name}")
        elif sub == AT.AT_DropColumn:
            self.drop(st, f"DROP COLUMN {table}.{cmd.name}")
        elif sub == AT.AT_SetNotNull:
            self.add("PG012", f"SET NOT NULL on {table}.{cmd.name}")
        elif sub == AT.AT_AddConstraint:
            self.add_constraint(cmd.def_, st, table)
        elif sub == AT.AT_ValidateConstraint and cmd.name in st.added_in_txn:
            self.add("PG005", f"VALIDATE CONSTRAINT {cmd.name} in the transaction that added it")

    def add_constraint(self, con: Any, st: _State, table: str | None) -> None:
        st.added_in_txn.add(con.conname or "")
        if con.contype in (CT.CONSTR_CHECK, CT.CONSTR_FOREIGN) and not con.skip_validation:
            kind = "FOREIGN KEY" if con.contype == CT.CONSTR_FOREIGN else "CHECK"
            self.add("PG004", f"{kind} {con.conname or ''} on {table} without NOT VALID")
        if con.contype in (CT.CONSTR_PRIMARY, CT.CONSTR_UNIQUE) and not con.indexname:
            self.add("PG013", f"{con.conname or 'constraint'} on {table} builds its index under lock")

    def add_column(self, col: Any, table: str | None) -> None:
        kinds = {c.contype: c for c in col.constraints or ()}
        if CT.CONSTR_NOTNULL in kinds and CT.CONSTR_DEFAULT not in kinds:
            self.add("PG006", f"{table}.{col.colname} NOT NULL without a default")
        default = kinds.get(CT.CONSTR_DEFAULT)
        volatile = sorted(set(_func_names(default.raw_expr)) & VOLATILE) if default else []
        if volatile:
            self.add("PG007", f"{table}.{col.colname} DEFAULT calls volatile {', '.join(volatile)}()")
        if CT.CONSTR_GENERATED in kinds:
            self.add("PG017", f"{table}.{col.colname} GENERATED ... STORED")
        if CT.CONSTR_FOREIGN in kinds:
            self.add("PG004", f"{table}.{col.colname} REFERENCES without NOT VALID")
        self.column_type(col)

    def column_type(self, col: Any) -> None:
        names = [n.sval for n in col.typeName.names] if col.typeName else []
        if names and names[-1] == "timestamp":
            self.add("PG014", f"column {col.colname} is timestamp without time zone")


def _verb(kind: str) -> str:
    return {"AlterTableStmt": "ALTER TABLE", "IndexStmt": "CREATE INDEX", "DropStmt": "DROP",
            "RenameStmt": "rename", "CreateTrigStmt": "CREATE TRIGGER"}.get(kind, kind)


def _created_tables(sql: str) -> set[str]:
    try:
        return {getattr(r.stmt, "relation").relname for r in parse_sql(sql)  # noqa: B009
                if type(r.stmt).__name__ == "CreateStmt"}
    except ParseError:
        return set()


def apply_suppressions(src: Source, findings: list[Finding]) -> list[Finding]:
    """Drop suppressed findings; a suppression without a reason (or naming an unknown rule)
    is itself a PG000 finding and suppresses nothing."""
    stmts = src.statements
    kept: list[Finding] = []
    meta: list[Finding] = []
    valid = []
    for sup in src.suppressions:
        unknown = [r for r in sup.rule_ids if r not in RULES]
        if not sup.reason or unknown or not sup.rule_ids:
            what = f"unknown rule {', '.join(unknown)}" if unknown else "no reason given"
            meta.append(Finding("PG000", str(src.path), sup.line, "-",
                                f"suppression ignored: {what}", "", RULES["PG000"].severity))
        else:
            valid.append(sup)
    for f in findings:
        stmt = next((s for s in stmts if s.line == f.line and s.function == f.function), None)
        end = stmt.end_line if stmt else f.line
        if any(f.rule_id in s.rule_ids and f.line - 1 <= s.line <= end for s in valid):
            continue
        kept.append(f)
    return meta + kept


def lint_source(src: Source) -> list[Finding]:
    return apply_suppressions(src, _Linter(src).run())


def default_paths() -> list[Path]:
    """The revisions the project ships."""
    root = Path(__file__).resolve().parents[2] / "migrations" / "versions"
    return sorted(root.glob("*.py"))


def lint_paths(paths: Iterable[Path | str] | None = None) -> list[Finding]:
    """Lint migration files (``.py`` revisions or ``.sql``); directories are expanded."""
    files: list[Path] = []
    for p in (default_paths() if paths is None else [Path(x) for x in paths]):
        if p.is_dir():
            files += sorted([*p.glob("*.py"), *p.glob("*.sql")])
        else:
            files.append(p)
    findings: list[Finding] = []
    for f in files:
        if f.name == "__init__.py":
            continue
        findings += lint_source(load(f))
    return findings
