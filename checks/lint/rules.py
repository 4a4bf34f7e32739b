"""The migration safety rules: an id, what goes wrong, and the safe alternative.

Modelled on the rules the established PostgreSQL migration linters carry (squawk,
strong_migrations, pgroll's validations), phrased for this kit's helpers. Each rule has a
``kind``:

* ``locking``: the statement takes a lock, or holds one, long enough to stall the
  application on a live, large table (or rewrites it);
* ``compatibility``: the statement breaks the release of the application that is still
  running during expand (it reads or writes something the migration renames, drops or
  changes);
* ``verification``: the linter could not check something (SQL built at run time, a
  statement that does not parse, a suppression without a reason), or the transaction the
  migration runs in is not the one it seems to be;
* ``hygiene``: a choice that bites later (a warning).

Ids are stable: PG000-PG018 keep their meaning; new rules are numbered after them.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("locking", "compatibility", "verification", "hygiene")


@dataclass(frozen=True)
class Rule:
    """One lint rule."""

    rule_id: str
    title: str
    why: str  # what goes wrong on a live database
    instead: str  # the safe alternative
    severity: str = "error"  # error fails `invoke lint`; warning is reported only
    kind: str = "locking"


_RULES = (
    Rule("PG000", "suppression without a reason",
         "an `ignore[...]` that does not say why hides a hazard from the next reader",
         "write `# phasegate-lint: ignore[PGxxx] reason: <why this is safe here>`",
         kind="verification"),
    Rule("PG001", "index created without CONCURRENTLY on an existing table",
         "CREATE INDEX holds a SHARE lock for the whole build: every insert, update and delete "
         "on the table waits until it finishes",
         "safe_ddl.create_index_concurrently(...) (CREATE INDEX CONCURRENTLY outside the "
         "transaction, cleaning up an INVALID leftover)"),
    Rule("PG002", "index dropped without CONCURRENTLY",
         "DROP INDEX takes ACCESS EXCLUSIVE on the table: reads and writes queue behind it",
         "safe_ddl.drop_index_concurrently(name)"),
    Rule("PG003", "statement that cannot run inside a transaction, run inside one",
         "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION CONCURRENTLY "
         "and VACUUM refuse to run in a transaction block (an implicit one too: several "
         "statements sent in one string); the migration fails, or a wrapper silently runs "
         "it without CONCURRENTLY",
         "run it alone in `op.get_context().autocommit_block()`, as the safe_ddl index helpers "
         "do (in a .sql file: outside BEGIN ... COMMIT)"),
    Rule("PG004", "constraint or foreign key added without NOT VALID on an existing table",
         "ADD CONSTRAINT (and a CHECK or REFERENCES written in ADD COLUMN, and ALTER DOMAIN "
         "... ADD CONSTRAINT) scans every row while holding a lock that blocks writes (a "
         "foreign key locks the referenced table too)",
         "safe_ddl.add_constraint_not_valid(...) then safe_ddl.validate_constraint(...) in a "
         "separate transaction (ALTER DOMAIN: ADD CONSTRAINT ... NOT VALID, then VALIDATE)"),
    Rule("PG005", "VALIDATE in the same transaction as the ADD",
         "the ADD's lock is still held while VALIDATE scans the table, which undoes the point "
         "of NOT VALID",
         "safe_ddl.validate_constraint(...), which runs in its own transaction"),
    Rule("PG006", "NOT NULL column added without a default",
         "fails on a non-empty table, and old application code that does not set the column "
         "fails on insert during the rollout",
         "add it nullable (or with a constant default), backfill in batches, then add a CHECK "
         "(... IS NOT NULL) NOT VALID, validate it, and SET NOT NULL", kind="compatibility"),
    Rule("PG007", "volatile default on a new column (serial and identity included)",
         "a default that calls a volatile function (PostgreSQL's pg_proc.provolatile = 'v': "
         "random(), clock_timestamp(), gen_random_uuid(), nextval(), or a function the catalog "
         "does not know), a serial type or an identity column fills every existing row: the "
         "whole table is rewritten under ACCESS EXCLUSIVE",
         "add the column without a default (or with a constant or stable one such as now()), "
         "set the default afterwards (ALTER COLUMN ... SET DEFAULT applies to new rows only), "
         "then backfill in batches"),
    Rule("PG008", "column type change",
         "ALTER COLUMN ... TYPE usually rewrites the table and its indexes under ACCESS "
         "EXCLUSIVE, and old code may not understand the new type",
         "add a new column, dual-write, backfill, switch reads, drop the old one in contract"),
    Rule("PG009", "rename of something the running application names",
         "the application version still running reads the old name (column, table, view, "
         "schema, type, enum value, function, sequence) and fails the moment the rename commits",
         "add the new name (or a view), dual-write, switch readers, drop the old name in contract",
         kind="compatibility"),
    Rule("PG010", "column, table or other object dropped outside a contract revision",
         "code still deployed during expand reads the column, table, view, type or function; "
         "dropping it breaks that code and cannot be rolled back",
         "drop it in a revision with `phase = \"contract\"`, after the soak",
         kind="compatibility"),
    Rule("PG011", "no lock_timeout before a lock-taking statement",
         "a DDL statement queued behind a long transaction blocks every later query on the table "
         "for as long as it waits",
         "go through migrations/safe_ddl.py (sets lock_timeout and retries), or "
         "`SET LOCAL lock_timeout` first (in a .sql file: SET lock_timeout, or SET LOCAL inside "
         "BEGIN ... COMMIT; outside a transaction block SET LOCAL does nothing)"),
    Rule("PG012", "SET NOT NULL on an existing column",
         "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE, unless a validated CHECK "
         "(col IS NOT NULL) already proves it",
         "add CHECK (col IS NOT NULL) NOT VALID, validate it, then SET NOT NULL (Postgres skips "
         "the scan when a validated CHECK proves it) and drop the CHECK"),
    Rule("PG013", "PRIMARY KEY or UNIQUE constraint added without USING INDEX",
         "builds the unique index while holding ACCESS EXCLUSIVE on the table (also when "
         "written inline in ADD COLUMN)",
         "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX"),
    Rule("PG014", "timestamp without time zone",
         "`timestamp` silently drops the zone; values shift when servers or sessions differ",
         "use timestamptz (sa.DateTime(timezone=True))", "warning", kind="hygiene"),
    Rule("PG015", "table-rewriting maintenance or explicit table lock",
         "VACUUM FULL, CLUSTER, REINDEX without CONCURRENTLY, REFRESH MATERIALIZED VIEW without "
         "CONCURRENTLY and LOCK TABLE in SHARE mode or stronger hold a lock that blocks writes "
         "(most of them reads too) for their whole run",
         "REINDEX CONCURRENTLY; REFRESH MATERIALIZED VIEW CONCURRENTLY; pg_repack for bloat; "
         "avoid explicit LOCK TABLE in migrations"),
    Rule("PG016", "TRUNCATE in a migration",
         "TRUNCATE takes ACCESS EXCLUSIVE and destroys data no downgrade can restore (CASCADE "
         "also empties every table that references it)",
         "delete in bounded batches in a data migration, or do not delete"),
    Rule("PG017", "stored generated column added to an existing table",
         "GENERATED ... STORED rewrites the whole table under ACCESS EXCLUSIVE",
         "add a plain nullable column and backfill it in batches (or compute it in a view)"),
    Rule("PG018", "SQL the linter cannot resolve statically",
         "SQL built at run time (a computed string, a DO block or function that EXECUTEs "
         "dynamic SQL, a connection handed to code the linter cannot follow, psql's \\i or "
         "\\gexec) may take any lock or drop anything: a pass would be a guess",
         "write the statement as a literal or a module-level constant; otherwise trace it "
         "(run the revision against a throwaway database with the lock trace) or suppress with "
         "a reason", kind="verification"),
    Rule("PG019", "statement that does not parse",
         "PostgreSQL's parser rejects it: the migration fails when run, and the linter cannot "
         "check what the author meant (a psql variable such as :name is not SQL either)",
         "fix the syntax (run it against a throwaway database); for psql-only syntax, lint the "
         "SQL psql would send", kind="verification"),
    Rule("PG020", "transaction control that does not do what it seems",
         "BEGIN inside a transaction block is ignored, COMMIT or ROLLBACK without one does "
         "nothing, a transaction left open at the end of a .sql file is rolled back when psql "
         "disconnects, and COMMIT in an Alembic revision ends Alembic's transaction under it "
         "(the next statement silently starts a new one, and the revision is recorded "
         "separately from its DDL)",
         "in a revision, use `op.get_context().autocommit_block()` for what must run outside "
         "the transaction; in a .sql file, pair every BEGIN with one COMMIT",
         kind="verification"),
    Rule("PG021", "DROP DATABASE in a migration",
         "destroys every table of a database at once; nothing restores it",
         "never from a migration: drop databases by hand, after a backup, with a second person"),
    Rule("PG022", "partition detached without CONCURRENTLY",
         "DETACH PARTITION takes ACCESS EXCLUSIVE on the parent table: every query on the "
         "partitioned table waits",
         "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), outside a "
         "transaction block"),
    Rule("PG023", "EXCLUDE constraint added to an existing table",
         "builds its index and checks every row while holding ACCESS EXCLUSIVE; there is no "
         "NOT VALID or USING INDEX form",
         "add it when the table is created, or build a new table with it and switch over"),
    Rule("PG024", "ALTER form that rewrites the table",
         "SET LOGGED / SET UNLOGGED, SET TABLESPACE and SET ACCESS METHOD copy the whole table "
         "(and its indexes) under ACCESS EXCLUSIVE",
         "avoid on a live table; move data with a new table and a backfill, or pg_repack"),
    Rule("PG025", "data change in the transaction that took a lock",
         "an UPDATE or DELETE of an existing table after DDL in the same transaction keeps the "
         "DDL's lock (often ACCESS EXCLUSIVE) until the data change commits: the table is "
         "blocked for the whole backfill",
         "commit the DDL first (its own revision, or an autocommit block), then backfill in "
         "bounded batches"),
    Rule("PG026", "whole-table UPDATE or DELETE",
         "one statement that changes every row locks every row it touches until it commits, "
         "and bloats the table; concurrent writers wait",
         "backfill in bounded batches (the rollout's backfill), each in its own transaction",
         "warning"),
    Rule("PG027", "change the running release cannot read",
         "moving an object to another schema (SET SCHEMA), dropping a composite type's "
         "attribute, dropping NOT NULL or a default the running code relies on, or adding a "
         "json column (no equality operator: its SELECT DISTINCT / UNION over * fails) breaks "
         "the application version still deployed during expand",
         "add alongside (a new column, a view in the old place), switch the code, and remove "
         "the old shape in a contract revision", kind="compatibility"),
)

RULES: dict[str, Rule] = {r.rule_id: r for r in _RULES}
