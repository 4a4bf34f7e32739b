-- name: backfill_bounds
-- The id range to backfill: everything that exists when the backfill starts.
SELECT coalesce(min(id), 0) - 1 AS after_id, coalesce(max(id), 0) AS until_id FROM background_job;

-- name: backfill_runs
-- One batch: the last attempt of each finished job in (after_id, until_id], keyset by id.
-- The run key matches what the ledger's job runner writes (ledger.redis_layout.run_key: the
-- type escaped with the table passed as pct/colon parameters; the run id 'job-<id>' needs no
-- escaping), so a live dual write and the backfill of the same attempt meet on the unique
-- key instead of duplicating it. A type the escaping changes may have its attempt recorded
-- under the pre-encoding key (by an earlier release's live dual write): that row is found
-- by its columns, and kept.
WITH batch AS (
    SELECT id FROM background_job
    WHERE id > %(after_id)s AND id <= %(until_id)s
    ORDER BY id LIMIT %(batch_size)s
), runs AS (
    INSERT INTO background_function_run (
        run_key, function_name, run_id, attempt, job_id, dispatch_key, correlation_id,
        requested_at, started_at, finished_at, duration_ms, status, error_class, terminal_error)
    SELECT k.escaped_type || ':job-' || j.id || ':' || greatest(j.attempts, 1), j.type, 'job-' || j.id,
           greatest(j.attempts, 1), j.id, j.dispatch_key, j.correlation_id,
           j.created_at, s.started_at, j.updated_at,
           -- The runner clears locked_at on finish, so the start is estimated from run_at;
           -- clamp: a job that waited a month must not overflow the int column.
           least(2147483647, greatest(0, extract(epoch FROM j.updated_at - s.started_at) * 1000))::int,
           CASE j.status WHEN 'SUCCEEDED' THEN 'SUCCEEDED' ELSE 'FAILED' END::background_function_run_status,
           CASE WHEN j.status = 'FAILED' THEN 'TERMINAL'::background_error_class END,
           CASE WHEN j.status = 'FAILED' THEN left(j.last_error, 2000) END
    FROM background_job j JOIN batch b ON b.id = j.id
        -- the id range lets the planner start at the batch, not at the table's first id
        AND j.id > %(after_id)s AND j.id <= (SELECT max(id) FROM batch)
    CROSS JOIN LATERAL (SELECT least(coalesce(j.locked_at, greatest(j.run_at, j.created_at)),
                                     j.updated_at) AS started_at) s
    CROSS JOIN LATERAL (SELECT replace(replace(j.type, %(pct)s, %(pct_escaped)s),
                                       %(colon)s, %(colon_escaped)s) AS escaped_type) k
    WHERE j.status IN ('SUCCEEDED', 'FAILED')
      AND (k.escaped_type = j.type
           OR NOT EXISTS (SELECT 1 FROM background_function_run r
                          WHERE r.run_id = 'job-' || j.id AND r.function_name = j.type
                            AND r.attempt = greatest(j.attempts, 1)))
    ON CONFLICT (run_key) DO NOTHING
    RETURNING 1
), letters AS (
    INSERT INTO background_dead_letter (job_id, job_type, payload, error_class, last_error,
                                        attempts, correlation_id, dead_at)
    SELECT j.id, j.type, j.payload, 'TERMINAL', left(j.last_error, 2000), j.attempts,
           j.correlation_id, j.updated_at
    FROM background_job j JOIN batch b ON b.id = j.id
        -- the id range lets the planner start at the batch, not at the table's first id
        AND j.id > %(after_id)s AND j.id <= (SELECT max(id) FROM batch)
    WHERE j.status = 'FAILED'
      AND NOT EXISTS (SELECT 1 FROM background_dead_letter d WHERE d.job_id = j.id)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT max(id) FROM batch) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM runs) AS inserted_runs,
       (SELECT count(*) FROM letters) AS inserted_letters;

-- name: backfill_lock_waiters
-- Sessions waiting on a lock right now: the backfill backs off while the application waits.
SELECT count(*) FROM pg_locks WHERE NOT granted;

-- name: backfill_replication_lag
-- Worst replay lag of any replica, in seconds (0 without replicas).
SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication;
