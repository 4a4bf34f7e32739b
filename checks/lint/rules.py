"""The migration safety rules: an id, what goes wrong, and the safe alternative.

Modelled on the rules the established PostgreSQL migration linters carry (squawk,
strong_migrations, pgroll's validations), phrased for this kit's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One lint rule."""

    rule_id: str
    title: str
    why: str  # what goes wrong on a live database
    instead: str  # the safe alternative
    severity: str = "error"  # error fails `invoke lint`; warning is reported only


_RULES = (
    Rule("PG000", "suppression without a reason",
         "an `ignore[...]` that does not say why hides a hazard from the next reader",
         "write `# phasegate-lint: ignore[PGxxx] reason: <why this is safe here>`"),
    Rule("PG001", "index created without CONCURRENTLY on an existing table",
         "CREATE INDEX holds a SHARE lock for the whole build: every insert, update and delete "
         "on the table waits until it finishes",
         "safe_ddl.create_index_concurrently(...) (CREATE INDEX CONCURRENTLY outside the "
         "transaction, cleaning up an INVALID leftover)"),
    Rule("PG002", "index dropped without CONCURRENTLY",
         "DROP INDEX takes ACCESS EXCLUSIVE on the table: reads and writes queue behind it",
         "safe_ddl.drop_index_concurrently(name)"),
    Rule("PG003", "CONCURRENTLY inside a transaction",
         "CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block; the migration "
         "fails (or, worse, is silently run without it by a wrapper)",
         "run it in `op.get_context().autocommit_block()`, as the safe_ddl index helpers do"),
    Rule("PG004", "constraint or foreign key added without NOT VALID on an existing table",
         "ADD CONSTRAINT scans every row while holding a lock that blocks writes (and, for a "
         "foreign key, locks the referenced table too)",
         "safe_ddl.add_constraint_not_valid(...) then safe_ddl.validate_constraint(...) in a "
         "separate transaction"),
    Rule("PG005", "VALIDATE in the same transaction as the ADD",
         "the ADD's ACCESS EXCLUSIVE lock is still held while VALIDATE scans the table, which "
         "undoes the point of NOT VALID",
         "safe_ddl.validate_constraint(...), which runs in its own transaction"),
    Rule("PG006", "NOT NULL column added without a default",
         "fails on a non-empty table, and old application code that does not set the column "
         "fails on insert during the rollout",
         "add it nullable (or with a constant default), backfill in batches, then add a CHECK "
         "(... IS NOT NULL) NOT VALID, validate it, and SET NOT NULL"),
    Rule("PG007", "volatile default on a new column",
         "a volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval()) "
         "rewrites the whole table under ACCESS EXCLUSIVE",
         "add the column without a default (or with a constant one), then backfill in batches"),
    Rule("PG008", "column type change",
         "ALTER COLUMN ... TYPE usually rewrites the table and its indexes under ACCESS "
         "EXCLUSIVE, and old code may not understand the new type",
         "add a new column, dual-write, backfill, switch reads, drop the old one in contract"),
    Rule("PG009", "column or table rename",
         "the application version still running reads the old name and fails the moment the "
         "rename commits",
         "add the new name (or a view), dual-write, switch readers, drop the old name in contract"),
    Rule("PG010", "column or table dropped outside a contract revision",
         "code still deployed during expand reads the column or table; dropping it breaks that "
         "code and cannot be rolled back",
         "drop it in a revision with `phase = \"contract\"`, after the soak"),
    Rule("PG011", "no lock_timeout before a lock-taking statement",
         "a DDL statement queued behind a long transaction blocks every later query on the table "
         "for as long as it waits",
         "go through migrations/safe_ddl.py (sets lock_timeout and retries), or "
         "`SET LOCAL lock_timeout` first"),
    Rule("PG012", "SET NOT NULL on an existing column",
         "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE",
         "add CHECK (col IS NOT NULL) NOT VALID, validate it, then SET NOT NULL (Postgres skips "
         "the scan when a validated CHECK proves it) and drop the CHECK"),
    Rule("PG013", "PRIMARY KEY or UNIQUE constraint added without USING INDEX",
         "builds the unique index while holding ACCESS EXCLUSIVE on the table",
         "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"),
    Rule("PG014", "timestamp without time zone",
         "`timestamp` silently drops the zone; values shift when servers or sessions differ",
         "use timestamptz (sa.DateTime(timezone=True))", "warning"),
    Rule("PG015", "table-rewriting maintenance or explicit table lock",
         "VACUUM FULL, CLUSTER, REINDEX without CONCURRENTLY and LOCK TABLE hold ACCESS "
         "EXCLUSIVE (or SHARE) for their whole run",
         "REINDEX CONCURRENTLY; pg_repack for bloat; avoid explicit LOCK TABLE in migrations"),
    Rule("PG016", "TRUNCATE in a migration",
         "TRUNCATE takes ACCESS EXCLUSIVE and destroys data no downgrade can restore",
         "delete in bounded batches in a data migration, or do not delete"),
    Rule("PG017", "stored generated column added to an existing table",
         "GENERATED ... STORED rewrites the whole table under ACCESS EXCLUSIVE",
         "add a plain nullable column and backfill it in batches (or compute it in a view)"),
    Rule("PG018", "SQL the linter cannot read",
         "op.execute with SQL built at run time (or that does not parse) cannot be checked",
         "write the statement as a literal (or a module-level constant), or suppress with a reason",
         "warning"),
)

RULES: dict[str, Rule] = {r.rule_id: r for r in _RULES}
