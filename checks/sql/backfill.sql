-- name: backfill_ranges
-- Per id range up to the bound: finished jobs, and how many of them have their backfilled
-- last-attempt run (type, run id job-<id>, attempt max(attempts,1)), found by those columns,
-- not by its key: a type holding a colon or a percent sign may have its run under the
-- pre-encoding key. One probe of the run_id index per job (LATERAL ... LIMIT 1), so the cost
-- follows the number of jobs, never the size of the run ledger (a hash join would read all).
SELECT (j.id / %(size)s) * %(size)s AS range_start,
       (j.id / %(size)s) * %(size)s + %(size)s - 1 AS range_end,
       count(*) AS finished_jobs,
       count(r.hit) AS runs
FROM background_job j
LEFT JOIN LATERAL (
    SELECT 1 AS hit FROM background_function_run
    WHERE run_id = 'job-' || j.id AND function_name = j.type
      AND attempt = greatest(j.attempts, 1) LIMIT 1
) r ON true
WHERE j.id <= %(until_id)s AND j.status IN ('SUCCEEDED', 'FAILED')
GROUP BY 1, 2 ORDER BY 1;

-- name: missing_in_range
-- A sample of finished jobs in one range without their backfilled run.
SELECT j.id AS job_id, j.type, j.status, j.attempts
FROM background_job j
WHERE j.id BETWEEN %(lo)s AND %(hi)s AND j.id <= %(until_id)s
  AND j.status IN ('SUCCEEDED', 'FAILED')
  AND NOT EXISTS (SELECT 1 FROM background_function_run r
                  WHERE r.run_id = 'job-' || j.id AND r.function_name = j.type
                    AND r.attempt = greatest(j.attempts, 1))
ORDER BY j.id LIMIT %(limit)s;

-- name: recorded_until_id
-- The backfill bound the rollout recorded in its checkpoint, when no param gives one.
SELECT (checkpoint ->> 'backfill_until_id')::bigint AS until_id
FROM phasegate_rollout_state WHERE checkpoint ? 'backfill_until_id'
ORDER BY updated_at DESC LIMIT 1;
