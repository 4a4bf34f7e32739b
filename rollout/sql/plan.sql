-- name: table_row_estimate
-- A table's row count as the catalog estimates it (0 when never analysed or missing): no count(*).
SELECT CASE WHEN c.reltuples < 0 THEN 0 ELSE c.reltuples::bigint END
FROM pg_class c
WHERE c.oid = to_regclass(%(table)s);
