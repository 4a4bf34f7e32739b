-- name: tables
-- Tables of the current schema.
SELECT c.relname AS name FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p');

-- name: columns
-- Columns of the given tables with their nullability.
SELECT table_name, column_name, is_nullable = 'YES' AS nullable
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY(%(tables)s);

-- name: enum_values
-- Labels of every enum type in the current schema.
SELECT t.typname AS enum_name, e.enumlabel AS label
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = current_schema()::regnamespace;

-- name: constraints
-- Constraints on the given tables and whether they are validated.
SELECT c.conname AS name, r.relname AS table_name, c.contype AS kind, c.convalidated AS validated
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
WHERE r.relnamespace = current_schema()::regnamespace AND r.relname = ANY(%(tables)s);

-- name: indexes
-- Indexes on the given tables with their validity and readiness.
SELECT i.relname AS name, t.relname AS table_name, x.indisvalid AS valid, x.indisready AS ready
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY(%(tables)s);

-- name: triggers
-- User triggers on the given tables and whether they fire (tgenabled 'D' = disabled).
SELECT t.tgname AS name, r.relname AS table_name, t.tgenabled <> 'D' AS enabled
FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
WHERE NOT t.tgisinternal AND r.relnamespace = current_schema()::regnamespace
  AND r.relname = ANY(%(tables)s);

-- name: functions
-- Names of the functions in the current schema.
SELECT p.proname AS name FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace;
