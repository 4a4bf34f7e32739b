-- name: running
-- Operator: what is running right now, oldest first.
SELECT id, run_key, function_name, started_at FROM background_function_run
WHERE status = 'RUNNING' ORDER BY started_at LIMIT 50;

-- name: failed_by_function
-- Operator: recent failures of one function, newest first.
SELECT id, run_key, error_class, terminal_error, requested_at FROM background_function_run
WHERE function_name = %(function_name)s AND status = 'FAILED'
  AND requested_at > now() - interval '1 day'
ORDER BY requested_at DESC LIMIT 50;

-- name: terminal_errors
-- Operator: terminal failures of the last day, newest first.
SELECT id, run_key, function_name, terminal_error, finished_at FROM background_function_run
WHERE status = 'FAILED' AND error_class = 'TERMINAL' AND finished_at > now() - interval '1 day'
ORDER BY finished_at DESC LIMIT 50;

-- name: dead_letters_by_type
-- Operator: open dead letters of one job type, oldest first.
SELECT id, job_id, error_class, last_error, dead_at FROM background_dead_letter
WHERE status = 'OPEN' AND job_type = %(job_type)s ORDER BY dead_at LIMIT 50;

-- name: attempts_of_run
-- Operator: every attempt of one run.
SELECT id, run_key, attempt, status, requested_at, finished_at FROM background_function_run
WHERE run_id = %(run_id)s ORDER BY attempt;

-- name: sample_values
-- Realistic parameters for the queries above, taken from the data itself.
SELECT (SELECT function_name FROM background_function_run ORDER BY id DESC LIMIT 1) AS function_name,
       (SELECT run_id FROM background_function_run ORDER BY id DESC LIMIT 1) AS run_id,
       (SELECT job_type FROM background_dead_letter WHERE status = 'OPEN'
        ORDER BY id DESC LIMIT 1) AS job_type;

-- name: table_rows
-- The planner's row estimate of a table (reltuples; -1 before the first ANALYZE).
SELECT c.relname AS table_name, c.reltuples::bigint AS rows FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%(tables)s);
