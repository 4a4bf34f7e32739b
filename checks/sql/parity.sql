-- name: runs_by_attempt
-- The run-ledger rows of the given attempts, found by (function_name, run_id, attempt), not by run key.
SELECT r.run_key, r.function_name, r.run_id, r.attempt, r.status::text AS status, r.updated_at
FROM background_function_run r
JOIN unnest(%(functions)s::text[], %(run_ids)s::text[], %(attempts)s::integer[])
     AS k(function_name, run_id, attempt)
  ON r.run_id = k.run_id AND r.function_name = k.function_name AND r.attempt = k.attempt;

-- name: latest_since
-- The latest attempt of every run requested inside the window, newest first (bounded).
SELECT * FROM (
    SELECT DISTINCT ON (function_name, run_id) function_name, run_id, run_key, attempt,
           status::text AS status, updated_at, requested_at
    FROM background_function_run
    WHERE requested_at >= %(since)s
    ORDER BY function_name, run_id, attempt DESC
) latest ORDER BY requested_at DESC LIMIT %(limit)s;

-- name: latest_of_runs
-- The DB read path: the latest attempt of each given (function_name, run_id).
SELECT DISTINCT ON (r.function_name, r.run_id) r.function_name, r.run_id, r.run_key, r.attempt,
       r.status::text AS status, r.updated_at
FROM background_function_run r
JOIN unnest(%(functions)s::text[], %(run_ids)s::text[]) AS k(function_name, run_id)
  ON r.function_name = k.function_name AND r.run_id = k.run_id
ORDER BY r.function_name, r.run_id, r.attempt DESC;

-- name: dual_since
-- When write_mode last became dual: the default start of the dual-write window.
SELECT updated_at FROM phasegate_flag WHERE name = 'write_mode' AND value IN ('dual', 'db_only');
