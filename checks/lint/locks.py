"""Which table locks a statement waits for, and whether they block the application.

"Strong" locks (SHARE and above) block writes while held, and, while merely *queued*, every
later query that conflicts with them: those need lock_timeout (PG011) and, held in a
transaction, make a later data change a long outage (PG025). SHARE UPDATE EXCLUSIVE and
weaker (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT, plain VACUUM, LOCK ... IN ACCESS
SHARE MODE) let reads and writes go on, so they need neither.
"""

from __future__ import annotations

from typing import Any

from checks.lint import sql_tree as t

# (table or None, strong): a lock a statement takes; strong = blocks writes (or reads)
Lock = tuple[str | None, bool]

# ALTER TABLE subcommands that take only SHARE UPDATE EXCLUSIVE (reads and writes go on).
_WEAK_ALTER = {"AT_ValidateConstraint", "AT_SetStatistics", "AT_SetOptions", "AT_ResetOptions",
               "AT_SetRelOptions", "AT_ResetRelOptions", "AT_ClusterOn", "AT_DropCluster",
               "AT_AttachPartition"}
_DROP_LOCKS = {"OBJECT_TABLE", "OBJECT_INDEX", "OBJECT_VIEW", "OBJECT_MATVIEW",
               "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE", "OBJECT_TRIGGER", "OBJECT_RULE",
               "OBJECT_POLICY"}


def locks(kind: str, node: dict[str, Any]) -> list[Lock]:
    """The table locks a statement waits for that block the application while queued."""
    rel = t.relname(node.get("relation"))
    if kind == "AlterTableStmt":
        cmds = [t.unwrap(c)[1] for c in node.get("cmds", ())]
        strong = any(c.get("subtype") not in _WEAK_ALTER for c in cmds) or not cmds
        out: list[Lock] = [(rel, True)] if strong else []
        for cmd in cmds:
            for con in constraints_of(cmd):
                if con.get("contype") == "CONSTR_FOREIGN":
                    out.append((t.relname(con.get("pktable")), True))
        return out
    if kind == "IndexStmt":
        return [] if node.get("concurrent") else [(rel, True)]
    if kind == "DropStmt":
        if node.get("removeType") not in _DROP_LOCKS or node.get("concurrent"):
            return []
        return [(drop_table(node, o), True) for o in node.get("objects", ())]
    if kind in ("RenameStmt", "AlterObjectSchemaStmt"):
        return [(rel, True)] if rel else []
    if kind in ("CreateTrigStmt", "RuleStmt", "ClusterStmt"):
        return [(rel, True)]
    if kind in ("CreatePolicyStmt", "AlterPolicyStmt"):
        return [(t.relname(node.get("table")), True)]
    if kind in ("LockStmt", "TruncateStmt"):
        if kind == "LockStmt" and int(node.get("mode", 8)) < 5:
            return []
        return [(t.relname(r), True) for r in node.get("relations", ())]
    if kind == "ReindexStmt":
        return [] if reindex_concurrent(node) else [(rel, True)]
    if kind == "VacuumStmt":
        opts = t.options(node.get("options"))
        if "full" not in opts or not t.option_true(opts["full"]):
            return []  # plain VACUUM: SHARE UPDATE EXCLUSIVE, reads and writes go on
        return [(t.relname(t.unwrap(r)[1].get("relation")), True)
                for r in node.get("rels", ())] or [(None, True)]
    if kind == "RefreshMatViewStmt":
        return [] if node.get("concurrent") else [(rel, True)]
    if kind == "AlterDomainStmt" and node.get("subtype") in ("C", "O"):
        return [(None, True)]  # validates every column of the domain, in every table
    if kind == "AlterTableMoveAllStmt":
        return [(None, True)]
    if kind == "CreateStmt":
        out = [(t.relname(p), True) for p in node.get("inhRelations", ())
               if node.get("partbound")]
        for elt in node.get("tableElts", ()):
            for con in constraints_of({"def": elt}) + table_constraint(elt):
                if con.get("contype") == "CONSTR_FOREIGN":
                    out.append((t.relname(con.get("pktable")), True))
        return [lk for lk in out if lk[0] != rel]
    return []


def reindex_concurrent(node: dict[str, Any]) -> bool:
    opts = t.options(node.get("params"))
    return "concurrently" in opts and t.option_true(opts["concurrently"])


def constraints_of(cmd: dict[str, Any]) -> list[dict[str, Any]]:
    kind, node = t.unwrap(cmd.get("def"))
    if kind == "Constraint":
        return [node]
    if kind == "ColumnDef":
        return [t.unwrap(c)[1] for c in node.get("constraints", ())]
    return []


def table_constraint(elt: Any) -> list[dict[str, Any]]:
    kind, node = t.unwrap(elt)
    return [node] if kind == "Constraint" else []


def drop_table(node: dict[str, Any], obj: Any) -> str | None:
    """The table a DROP locks: the object itself, or (trigger, rule, policy) its table."""
    kind, inner = t.unwrap(obj)
    names = t.strings(inner.get("items")) if kind == "List" else []
    if node.get("removeType") in ("OBJECT_TRIGGER", "OBJECT_RULE", "OBJECT_POLICY"):
        return names[-2] if len(names) >= 2 else None
    if node.get("removeType") == "OBJECT_INDEX":
        return None  # the index's table is not named; its lock is still taken
    return names[-1] if names else last_name(obj)


def last_name(obj: Any) -> str:
    kind, node = t.unwrap(obj)
    if kind == "List":
        names = t.strings(node.get("items"))
        return names[-1] if names else "?"
    if kind == "String":
        return node.get("sval", "?")
    if kind == "TypeName":
        return (t.strings(node.get("names")) or ["?"])[-1]
    if kind == "ObjectWithArgs":
        return (t.strings(node.get("objname")) or ["?"])[-1]
    return "?"
