-- name: objects_holding_rows
-- Which of the given tables ('t') and columns ('t.c') exist and hold a row (a column: a non-NULL value); a name arrives as data and becomes an identifier only through quote_ident, and CASE keeps a missing table or column from being read.
SELECT o.name
FROM unnest(CAST(%(objects)s AS text[])) AS o(name)
CROSS JOIN LATERAL (
    SELECT split_part(o.name, '.', 1) AS tbl, nullif(split_part(o.name, '.', 2), '') AS col
) AS p
WHERE CASE
    WHEN to_regclass(quote_ident(p.tbl)) IS NULL THEN false
    WHEN p.col IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute a
        WHERE a.attrelid = to_regclass(quote_ident(p.tbl)) AND a.attname = p.col
          AND a.attnum > 0 AND NOT a.attisdropped) THEN false
    ELSE (xpath('/row/present/text()', query_to_xml(
        'SELECT EXISTS (SELECT 1 FROM ' || quote_ident(p.tbl)
        || CASE WHEN p.col IS NULL THEN '' ELSE ' WHERE ' || quote_ident(p.col) || ' IS NOT NULL' END
        || ') AS present', false, true, '')))[1]::text = 'true'
END
ORDER BY o.name;

-- name: count_open_dead_letters
-- How many dead letters are OPEN (nobody requeued or discarded them): what a drop of the table would lose.
SELECT count(*) FROM background_dead_letter WHERE status = 'OPEN';

-- name: open_dead_letters
-- Every OPEN dead letter as one JSON object with all its columns (whatever the revision added), oldest first: the export written before a drop.
SELECT to_jsonb(d) FROM background_dead_letter AS d WHERE d.status = 'OPEN' ORDER BY d.id;
