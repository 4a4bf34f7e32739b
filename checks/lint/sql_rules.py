"""The rules, applied to one parsed statement at a time (locking and transaction rules
here, compatibility rules in ``compat_rules.py``).

A statement arrives with where it runs (:class:`Where`): inside a transaction block or not,
through a safe_ddl helper (lock_timeout set, lock timeouts retried) or not. The linter keeps
the transaction, session and schema state of ``state.py`` and calls ``emit`` for every
finding; it never raises on any tree PostgreSQL's parser produced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checks.lint import sql_tree as t
from checks.lint.compat_rules import CompatRules, column_constraints
from checks.lint.dynamic_rules import DynamicRules
from checks.lint.locks import last_name
from checks.lint.locks import locks as lock_targets
from checks.lint.maint_rules import MaintenanceRules
from checks.lint.state import Schema, Session, Txn, Unit
from checks.lint.volatility import VOLATILE, volatility

# ALTER TABLE forms that copy the whole table.
_REWRITES = {"AT_SetLogged": "SET LOGGED", "AT_SetUnLogged": "SET UNLOGGED",
             "AT_SetTableSpace": "SET TABLESPACE", "AT_SetAccessMethod": "SET ACCESS METHOD"}
_SERIAL = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}
_VERBS = {"AlterTableStmt": "ALTER TABLE", "IndexStmt": "CREATE INDEX", "DropStmt": "DROP",
          "RenameStmt": "rename", "CreateTrigStmt": "CREATE TRIGGER", "LockStmt": "LOCK TABLE",
          "TruncateStmt": "TRUNCATE", "ClusterStmt": "CLUSTER", "ReindexStmt": "REINDEX",
          "VacuumStmt": "VACUUM FULL", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
          "CreateStmt": "CREATE TABLE", "CreatePolicyStmt": "CREATE POLICY",
          "AlterPolicyStmt": "ALTER POLICY", "RuleStmt": "CREATE RULE",
          "AlterObjectSchemaStmt": "SET SCHEMA", "AlterDomainStmt": "ALTER DOMAIN",
          "AlterTableMoveAllStmt": "ALTER TABLE ALL IN TABLESPACE"}


# statement kind -> its handler (an unbound method), looked up once per kind
_HANDLERS: dict[str, Callable[..., None] | None] = {}


@dataclass(frozen=True, slots=True)
class Where:
    """Where a statement runs."""

    line: int
    end_line: int
    text: str
    helper: bool = False  # run by a safe_ddl helper: lock_timeout set, lock timeouts retried
    in_txn: bool = True  # inside a transaction block (explicit, Alembic's or implicit)
    anchor: int = 0  # first line of the outermost statement (a DO block's), for suppressions


Emit = Callable[[str, str, Where], None]


class StatementLinter(CompatRules, DynamicRules, MaintenanceRules):
    """Applies every rule to the statements of one unit, in order."""

    def __init__(self, unit: Unit, schema: Schema, emit: Emit, *, txn: Txn | None = None,
                 session: Session | None = None) -> None:
        self.unit, self.schema, self.emit = unit, schema, emit
        self.txn = txn or Txn()
        self.session = session or Session()
        self.block = False  # .sql files: inside BEGIN ... COMMIT
        self.where = Where(0, 0, "")
        self.calls = True  # the current statement may call functions
        self.depth = 0  # DO blocks / function bodies linted inline

    def add(self, rule_id: str, message: str) -> None:
        self.emit(rule_id, message, self.where)

    # ------------------------------------------------------------------ dispatch
    def statement(self, p: t.Parsed, where: Where) -> None:
        self.where, self.calls = where, p.calls
        kind, node = p.kind, p.node
        locks = lock_targets(kind, node)
        live = [(table, strong) for table, strong in locks if not self.unit.exempt(table)]
        if live and not (where.helper or self.txn.lock_timeout or self.session.lock_timeout):
            table = next((tb for tb, _ in live if tb), None)
            self.add("PG011", f"{_VERBS.get(kind, kind)} on {table or 'a table'} without lock_timeout")
        handler = _HANDLERS.get(kind)
        if handler is None and kind not in _HANDLERS:
            handler = _HANDLERS[kind] = getattr(type(self), f"on_{kind}", None)
        if handler is not None:
            handler(self, node)
        for table, strong in live:
            if strong and where.in_txn:
                self.txn.locks.append(f"{_VERBS.get(kind, kind)} {table or ''} "
                                      f"(line {where.line})".replace("  ", " "))

    # ------------------------------------------------------------------ transactions
    def boundary(self) -> None:
        """A transaction ended (and the next statement starts a new one)."""
        self.txn = Txn()

    def on_TransactionStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        kind = node.get("kind", "")
        opens = kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
        closes = kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE",
                          "TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED")
        verb = kind.removeprefix("TRANS_STMT_").replace("_", " ")
        if self.unit.python:
            if opens or closes:
                self.add("PG020", f"{verb} inside an Alembic revision: use autocommit_block()")
                self.boundary()
            return
        if opens:
            if self.block:
                self.add("PG020", f"{verb} inside the transaction opened on line "
                                  f"{self.txn.begin_line}: PostgreSQL ignores it")
            else:
                self.block = True
                self.txn = Txn(explicit=True, begin_line=self.where.line)
        elif closes and kind not in ("TRANS_STMT_COMMIT_PREPARED", "TRANS_STMT_ROLLBACK_PREPARED"):
            if not self.block:
                self.add("PG020", f"{verb} without a transaction block: it does nothing")
            self.block = False
            self.boundary()

    def finish(self) -> None:
        """End of a .sql file: an open transaction block is rolled back on disconnect."""
        if not self.unit.python and self.block:
            self.emit("PG020", f"the transaction opened on line {self.txn.begin_line} is never "
                      "committed: psql disconnects and PostgreSQL rolls it back",
                      Where(self.txn.begin_line, self.txn.begin_line, "BEGIN"))

    # ------------------------------------------------------------------ settings
    def on_VariableSetStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        if node.get("name") != "lock_timeout":
            return
        value = t.const_value((node.get("args") or [None])[0])
        on = node.get("kind") == "VAR_SET_VALUE" and str(value).strip() not in ("0", "0ms", "0s")
        self.set_lock_timeout(on, bool(node.get("is_local")))

    def set_lock_timeout(self, on: bool, local: bool) -> None:
        if local:
            if self.where.in_txn:  # outside a transaction block SET LOCAL does nothing
                self.txn.lock_timeout = on
        else:
            self.session.lock_timeout = on
            self.txn.lock_timeout = on and self.txn.lock_timeout

    def on_SelectStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        if not self.calls:
            return
        for kind, call in t.walk(node.get("targetList")):
            if kind != "FuncCall" or t.strings(call.get("funcname"))[-1:] != ["set_config"]:
                continue
            args = [t.const_value(a) for a in call.get("args", ())]
            if len(args) == 3 and args[0] == "lock_timeout":
                self.set_lock_timeout(str(args[1]).strip() not in ("0", "0ms", "0s", "None"),
                                      args[2] is True or str(args[2]).lower() in ("true", "t", "on"))
        self.calls_functions(node)

    # ------------------------------------------------------------------ creation
    def on_CreateStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table = t.relname(node.get("relation"))
        if table:
            self.unit.new_tables.add(table)
        for elt in node.get("tableElts", ()):
            kind, col = t.unwrap(elt)
            if kind == "ColumnDef":
                self.column_type(col)

    def on_CreateTableAsStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table = t.relname(t.unwrap(node.get("into"))[1].get("rel"))
        if table:
            self.unit.new_tables.add(table)

    def on_ViewStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.add(t.relname(node.get("view")) or "")

    def on_CreateFunctionStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        name = t.strings(node.get("funcname"))[-1:]
        opts = t.options(node.get("options"))
        if not name:
            return
        vol = str(t.unwrap(opts.get("volatility"))[1].get("sval", "volatile")) \
            if "volatility" in opts else "volatile"
        self.schema.volatility[name[0]] = vol[:1]
        self.unit.created.add(name[0])
        body = t.strings(t.unwrap(opts.get("as"))[1].get("items")) if "as" in opts else []
        lang = str(t.unwrap(opts.get("language"))[1].get("sval", "sql")) if "language" in opts else "sql"
        if body:
            self.schema.functions[name[0]] = (lang.lower(), body[0])

    def on_CreateEnumStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.update(t.strings(node.get("typeName"))[-1:])

    def on_CompositeTypeStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.add(t.relname(node.get("typevar")) or "")

    def on_CreateDomainStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.update(t.strings(node.get("domainname"))[-1:])

    def on_CreateSeqStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.add(t.relname(node.get("sequence")) or "")

    def on_CreateSchemaStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.unit.created.add(node.get("schemaname", ""))

    # ------------------------------------------------------------------ indexes
    def on_IndexStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table, name = t.relname(node.get("relation")), node.get("idxname") or ""
        if node.get("concurrent") and self.where.in_txn:
            self.add("PG003", f"CREATE INDEX CONCURRENTLY {name} inside a transaction")
        if self.unit.exempt(table):
            self.unit.new_indexes.add(name)
        elif not node.get("concurrent") and t.unwrap(node.get("relation"))[1].get("inh", False):
            self.add("PG001", f"CREATE INDEX {name} on existing table {table}")

    def on_DropStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        kind = node.get("removeType")
        if kind == "OBJECT_INDEX":
            names = [last_name(o) for o in node.get("objects", ())]
            if node.get("concurrent") and self.where.in_txn:
                self.add("PG003", f"DROP INDEX CONCURRENTLY {', '.join(names)} inside a transaction")
            elif not node.get("concurrent") and not all(n in self.unit.new_indexes for n in names):
                self.add("PG002", f"DROP INDEX {', '.join(names)} without CONCURRENTLY")
            return
        self.dropped(node)

    # ------------------------------------------------------------------ ALTER TABLE
    def on_AlterTableStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table = t.relname(node.get("relation"))
        composite = node.get("objtype") == "OBJECT_TYPE"
        for raw in node.get("cmds", ()):
            cmd = t.unwrap(raw)[1]
            sub = cmd.get("subtype", "")
            if composite:
                self.alter_composite(table, sub, cmd)
                continue
            if self.unit.exempt(table):
                if sub == "AT_AddColumn":
                    self.column_type(t.unwrap(cmd.get("def"))[1])
                elif sub == "AT_AddConstraint":
                    self.txn.added[t.unwrap(cmd.get("def"))[1].get("conname") or ""] = table or ""
                continue
            self.alter_cmd(table or "?", sub, cmd)

    def alter_cmd(self, table: str, sub: str, cmd: dict[str, Any]) -> None:
        if sub == "AT_AddColumn":
            self.add_column(table, t.unwrap(cmd.get("def"))[1])
        elif sub == "AT_AlterColumnType":
            self.add("PG008", f"type change of {table}.{cmd.get('name')}")
            self.column_type(t.unwrap(cmd.get("def"))[1], cmd.get("name"))
        elif sub == "AT_SetNotNull":
            self.set_not_null(table, cmd.get("name") or "")
        elif sub == "AT_AddConstraint":
            self.add_constraint(table, t.unwrap(cmd.get("def"))[1])
        elif sub == "AT_ValidateConstraint":
            self.validate(table, cmd.get("name") or "")
        elif sub == "AT_DropConstraint":
            self.drop_constraint(cmd.get("name") or "")
        elif sub == "AT_DetachPartition":
            part = t.unwrap(cmd.get("def"))[1]
            name = t.relname(part.get("name"))
            if part.get("concurrent"):
                if self.where.in_txn:
                    self.add("PG003", f"DETACH PARTITION {name} CONCURRENTLY inside a transaction")
            else:
                self.add("PG022", f"DETACH PARTITION {name} from {table} without CONCURRENTLY")
        elif sub in _REWRITES:
            self.add("PG024", f"{_REWRITES[sub]} rewrites {table}")
        else:
            self.alter_compat(table, sub, cmd)

    def add_column(self, table: str, col: dict[str, Any]) -> None:
        name = f"{table}.{col.get('colname')}"
        kinds = column_constraints(col)
        typ = t.type_names(col.get("typeName"))
        default = kinds.get("CONSTR_DEFAULT")
        has_default = default is not None and t.const_value(default.get("raw_expr")) is not None
        fills = {"CONSTR_IDENTITY", "CONSTR_GENERATED"} & kinds.keys() or set(typ[-1:]) & _SERIAL
        if "CONSTR_NOTNULL" in kinds and not has_default and not fills:
            self.add("PG006", f"{name} NOT NULL without a default")
        if default is not None:
            hot = self.volatile_calls(default.get("raw_expr"))
            if hot:
                self.add("PG007", f"{name} DEFAULT calls volatile {', '.join(hot)}")
        if typ[-1:] and typ[-1] in _SERIAL:
            self.add("PG007", f"{name} is {typ[-1]}: nextval() fills every row")
        if "CONSTR_IDENTITY" in kinds:
            self.add("PG007", f"{name} is an identity column: every row gets a value")
        gen = kinds.get("CONSTR_GENERATED")
        if gen is not None and gen.get("generated_kind", "s") == "s":
            self.add("PG017", f"{name} GENERATED ... STORED")
        for contype, what in (("CONSTR_FOREIGN", "REFERENCES"), ("CONSTR_CHECK", "CHECK")):
            if contype in kinds and not kinds[contype].get("skip_validation"):
                self.add("PG004", f"{name} {what} written in ADD COLUMN scans the table")
        for contype, what in (("CONSTR_UNIQUE", "UNIQUE"), ("CONSTR_PRIMARY", "PRIMARY KEY")):
            if contype in kinds:
                self.add("PG013", f"{name} {what} written in ADD COLUMN builds its index under lock")
        self.new_column_compat(table, col, typ)
        self.column_type(col)

    def volatile_calls(self, expr: Any) -> list[str]:
        hot: list[str] = []
        if not self.calls:
            return hot
        for kind, call in t.walk(expr):
            if kind == "FuncCall":
                name = t.strings(call.get("funcname"))[-1:] or ["?"]
                nargs = len(call.get("args", ()))
                if volatility(name[0].lower(), nargs, self.schema.volatility) == VOLATILE:
                    hot.append(f"{name[0]}()")
        return sorted(set(hot))

    def add_constraint(self, table: str, con: dict[str, Any]) -> None:
        name, contype = con.get("conname") or "", con.get("contype", "")
        self.txn.added[name] = table
        if contype in ("CONSTR_CHECK", "CONSTR_FOREIGN") and not con.get("skip_validation"):
            kind = "FOREIGN KEY" if contype == "CONSTR_FOREIGN" else "CHECK"
            self.add("PG004", f"{kind} {name} on {table} without NOT VALID".replace("  ", " "))
        if contype in ("CONSTR_PRIMARY", "CONSTR_UNIQUE") and not con.get("indexname"):
            self.add("PG013", f"{name or 'constraint'} on {table} builds its index under lock")
        if contype == "CONSTR_EXCLUSION":
            self.add("PG023", f"EXCLUDE constraint {name} on {table}".replace("  ", " "))
        if contype == "CONSTR_CHECK":
            cols = _not_null_columns(con.get("raw_expr"))
            if cols and name:
                self.schema.not_null_checks[name] = (table, cols)
            if cols and not con.get("skip_validation"):
                for col in cols:
                    self.schema.proven_not_null[(table, col)] = name

    def validate(self, table: str, name: str) -> None:
        if name in self.txn.added:
            self.add("PG005", f"VALIDATE CONSTRAINT {name} in the transaction that added it")
        fact = self.schema.not_null_checks.get(name)
        if fact is None:
            self.schema.validated_elsewhere.add(table)
        elif fact[0] == table:
            for col in fact[1]:
                self.schema.proven_not_null[(table, col)] = name

    def drop_constraint(self, name: str) -> None:
        self.schema.not_null_checks.pop(name, None)
        for key in [k for k, v in self.schema.proven_not_null.items() if v == name]:
            del self.schema.proven_not_null[key]

    def set_not_null(self, table: str, col: str) -> None:
        if (table, col) in self.schema.proven_not_null or table in self.schema.validated_elsewhere:
            return
        self.add("PG012", f"SET NOT NULL on {table}.{col}")

    def column_type(self, col: dict[str, Any], name: str | None = None) -> None:
        if t.type_names(col.get("typeName"))[-1:] == ["timestamp"]:
            self.add("PG014", f"column {name or col.get('colname')} is timestamp without time zone")

    # ------------------------------------------------------------------ data changes
    def on_UpdateStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.data_change("UPDATE", node)

    def on_DeleteStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.data_change("DELETE", node)

    def data_change(self, verb: str, node: dict[str, Any]) -> None:
        table = t.relname(node.get("relation"))
        if self.unit.exempt(table):
            return
        if self.txn.locks and self.where.in_txn:
            self.add("PG025", f"{verb} {table} while this transaction holds "
                              f"{self.txn.locks[0]}{self.txn.origin}")
        if node.get("whereClause") is None:
            self.add("PG026", f"{verb} of every row of {table}")
        self.calls_functions(node)


def _not_null_columns(expr: Any) -> frozenset[str]:
    """Columns ``CHECK (a IS NOT NULL [AND b IS NOT NULL ...])`` proves non-null."""
    kind, node = t.unwrap(expr)
    if kind == "NullTest" and node.get("nulltesttype") == "IS_NOT_NULL":
        k, ref = t.unwrap(node.get("arg"))
        fields = t.strings(ref.get("fields")) if k == "ColumnRef" else []
        return frozenset(fields[-1:])
    if kind == "BoolExpr" and node.get("boolop") == "AND_EXPR":
        out: frozenset[str] = frozenset()
        for arg in node.get("args", ()):
            out |= _not_null_columns(arg)
        return out
    return frozenset()
