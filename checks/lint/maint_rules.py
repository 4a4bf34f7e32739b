"""Maintenance statements on a live table: VACUUM FULL, CLUSTER, REINDEX, REFRESH
MATERIALIZED VIEW, LOCK TABLE, TRUNCATE, DROP DATABASE, tablespace moves.

Options are read the way PostgreSQL reads them (``VACUUM (FULL false)`` is a plain VACUUM;
``REINDEX (CONCURRENTLY off)`` is not concurrent), and a lock mode weaker than SHARE
(``LOCK ... IN ACCESS SHARE MODE``) does not block the application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from checks.lint import sql_tree as t
from checks.lint.locks import reindex_concurrent
from checks.lint.state import Unit

_LOCK_MODES = {5: "SHARE", 6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}


class MaintenanceRules:
    """Mixed into the statement linter (``sql_rules.StatementLinter``)."""

    unit: Unit

    if TYPE_CHECKING:  # provided by the linter
        def add(self, rule_id: str, message: str) -> None: ...

    @property
    def in_txn(self) -> bool:
        return bool(self.where.in_txn)  # type: ignore[attr-defined]

    def on_ReindexStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        what = node.get("kind", "").removeprefix("REINDEX_OBJECT_").lower()
        target = t.relname(node.get("relation")) or node.get("name") or ""
        if reindex_concurrent(node):
            if self.in_txn:
                self.add("PG003", f"REINDEX CONCURRENTLY {what} {target} inside a transaction")
        elif not self.unit.exempt(target):
            self.add("PG015", f"REINDEX {what} {target} without CONCURRENTLY".replace("  ", " "))

    # ------------------------------------------------------------------ maintenance
    def on_VacuumStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        opts = t.options(node.get("options"))
        tables = [t.relname(t.unwrap(r)[1].get("relation")) for r in node.get("rels", ())]
        if node.get("is_vacuumcmd") and self.in_txn:
            self.add("PG003", "VACUUM inside a transaction")
        if "full" in opts and t.option_true(opts["full"]) and not (
                tables and all(self.unit.exempt(x) for x in tables)):
            self.add("PG015", f"VACUUM FULL {', '.join(x or '' for x in tables)} rewrites the table"
                     .replace("  ", " "))

    def on_ClusterStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        table = t.relname(node.get("relation"))
        if not self.unit.exempt(table):
            self.add("PG015", f"CLUSTER {table or '(every clustered table)'} rewrites the table")

    def on_LockStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        mode = int(node.get("mode", 8))
        tables = [t.relname(r) for r in node.get("relations", ())]
        if mode >= 5 and not all(self.unit.exempt(x) for x in tables):
            self.add("PG015", f"LOCK TABLE {', '.join(x or '?' for x in tables)} IN "
                              f"{_LOCK_MODES[min(mode, 8)]} MODE")

    def on_RefreshMatViewStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        if not node.get("concurrent"):
            self.add("PG015", f"REFRESH MATERIALIZED VIEW {t.relname(node.get('relation'))} "
                              "without CONCURRENTLY blocks its readers")

    def on_TruncateStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        tables = [t.relname(r) or "?" for r in node.get("relations", ())]
        if all(self.unit.exempt(x) for x in tables):
            return
        cascade = " CASCADE (and every table that references it)" \
            if node.get("behavior") == "DROP_CASCADE" else ""
        self.add("PG016", "TRUNCATE " + ", ".join(tables) + cascade)

    def on_DropdbStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.add("PG021", f"DROP DATABASE {node.get('dbname', '')}")

    def on_AlterTableMoveAllStmt(self, node: dict[str, Any]) -> None:  # noqa: N802
        self.add("PG024", f"ALTER ... ALL IN TABLESPACE {node.get('orig_tablespacename', '')} "
                          "moves every table")
