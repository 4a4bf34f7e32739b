-- name: start_run
-- Record one attempt as RUNNING; inserts nothing when the attempt is already recorded.
INSERT INTO background_function_run
    (run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
     requested_at, started_at)
VALUES (%(run_key)s, %(function_name)s, %(run_id)s, %(attempt)s, %(dispatch_key)s,
        %(correlation_id)s, %(job_id)s, coalesce(%(requested_at)s::timestamptz, now()), now())
ON CONFLICT (run_key) DO NOTHING;

-- name: start_runs
-- Record many attempts as RUNNING in one statement (one array per column); returns the new keys.
INSERT INTO background_function_run
    (run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
     requested_at, started_at)
SELECT s.run_key, s.function_name, s.run_id, s.attempt, s.dispatch_key, s.correlation_id,
       s.job_id, coalesce(s.requested_at, now()), now()
FROM unnest(%(run_keys)s::text[], %(function_names)s::text[], %(run_ids)s::text[],
            %(attempts)s::integer[], %(dispatch_keys)s::text[], %(correlation_ids)s::text[],
            %(job_ids)s::bigint[], %(requested_ats)s::timestamptz[])
     AS s(run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
          requested_at)
ON CONFLICT (run_key) DO NOTHING
RETURNING run_key;

-- name: finish_run
-- Settle a RUNNING attempt (SUCCEEDED or FAILED) with its duration; any other status matches no row.
UPDATE background_function_run
SET status = %(status)s::background_function_run_status,
    error_class = %(error_class)s::background_error_class,
    terminal_error = %(terminal_error)s,
    finished_at = now(),
    duration_ms = greatest(0, (extract(epoch FROM now() - coalesce(started_at, requested_at))
                               * 1000)::int),
    updated_at = now()
WHERE run_key = %(run_key)s AND status = 'RUNNING'
RETURNING run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
          requested_at, started_at, finished_at, duration_ms, status, error_class,
          terminal_error, updated_at;

-- name: get_run
-- One attempt by its run key.
SELECT run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
       requested_at, started_at, finished_at, duration_ms, status, error_class,
       terminal_error, updated_at
FROM background_function_run
WHERE run_key = %(run_key)s;

-- name: get_runs
-- The attempts with these run keys.
SELECT run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
       requested_at, started_at, finished_at, duration_ms, status, error_class,
       terminal_error, updated_at
FROM background_function_run
WHERE run_key = ANY(%(run_keys)s::text[]);

-- name: latest_attempt
-- The highest attempt of one run: what its status is.
SELECT run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
       requested_at, started_at, finished_at, duration_ms, status, error_class,
       terminal_error, updated_at
FROM background_function_run
WHERE run_id = %(run_id)s AND function_name = %(function_name)s
ORDER BY attempt DESC
LIMIT 1;

-- name: run_history
-- Every attempt recorded for these jobs, oldest first.
SELECT run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
       requested_at, started_at, finished_at, duration_ms, status, error_class,
       terminal_error, updated_at
FROM background_function_run
WHERE job_id = ANY(%(job_ids)s::bigint[])
ORDER BY requested_at, attempt;

-- name: latest_attempts_in_range
-- The latest attempt of every run requested in [since, until): what Redis should say about it.
SELECT DISTINCT ON (function_name, run_id)
       run_key, function_name, run_id, attempt, dispatch_key, correlation_id, job_id,
       requested_at, started_at, finished_at, duration_ms, status, error_class,
       terminal_error, updated_at
FROM background_function_run
WHERE requested_at >= %(since)s AND requested_at < %(until)s
ORDER BY function_name, run_id, attempt DESC;

-- name: top_errors
-- The most frequent errors of FAILED attempts of one error class within the last seconds.
SELECT terminal_error, count(*) AS n, max(finished_at) AS last_seen
FROM background_function_run
WHERE status = 'FAILED' AND error_class = %(error_class)s
  AND finished_at >= now() - make_interval(secs => %(seconds)s)
GROUP BY terminal_error
ORDER BY n DESC, last_seen DESC
LIMIT %(limit)s;

-- name: latest_attempts_of_runs
-- The highest attempt of each given (function_name, run_id): what each one's status is.
SELECT DISTINCT ON (r.function_name, r.run_id)
       r.run_key, r.function_name, r.run_id, r.attempt, r.dispatch_key, r.correlation_id,
       r.job_id, r.requested_at, r.started_at, r.finished_at, r.duration_ms, r.status,
       r.error_class, r.terminal_error, r.updated_at
FROM background_function_run r
JOIN unnest(%(function_names)s::text[], %(run_ids)s::text[]) AS k(function_name, run_id)
  ON r.run_id = k.run_id AND r.function_name = k.function_name
ORDER BY r.function_name, r.run_id, r.attempt DESC;

-- name: rekey_legacy_run
-- Move one run's rows still under a pre-encoding key, and any such row holding one of the given keys, to their escaped key (escape table as parameters, see ledger/redis_layout.py); a row whose escaped key is taken waits for a later round.
UPDATE background_function_run r
SET run_key = k.escaped_key
FROM (SELECT id,
             replace(replace(function_name, %(pct)s, %(pct_escaped)s), %(colon)s, %(colon_escaped)s)
             || ':' || replace(replace(run_id, %(pct)s, %(pct_escaped)s), %(colon)s, %(colon_escaped)s)
             || ':' || attempt AS escaped_key
      FROM background_function_run
      WHERE (run_id = %(run_id)s AND function_name = %(function_name)s)
         OR run_key = ANY(%(run_keys)s::text[])) k
WHERE r.id = k.id AND r.run_key <> k.escaped_key
  AND NOT EXISTS (SELECT 1 FROM background_function_run o WHERE o.run_key = k.escaped_key)
RETURNING r.run_key;
