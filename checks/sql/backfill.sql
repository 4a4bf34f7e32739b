-- name: backfill_ranges
-- Per id range up to the bound: finished jobs, and how many of them have their backfilled
-- last-attempt run (type, run id job-<id>, attempt max(attempts,1)), found by those columns,
-- not by one key alone: a type holding a colon or a percent sign may have its run under the
-- pre-encoding key, so both keys are probed and the columns must match. Probes of the unique
-- run_key index (equality, whatever the statistics say: right after the backfill the ledger
-- was last analyzed empty, and a run_id-index probe was planned as a sequential scan per job,
-- which timed out a 100k-job demo), so the cost follows the number of jobs, never the size
-- of the run ledger.
SELECT (j.id / %(size)s) * %(size)s AS range_start,
       (j.id / %(size)s) * %(size)s + %(size)s - 1 AS range_end,
       count(*) AS finished_jobs,
       count(r.hit) AS runs
FROM background_job j
LEFT JOIN LATERAL (
    SELECT 1 AS hit FROM background_function_run
    WHERE run_key IN (replace(replace(j.type, %(pct)s, %(pct_escaped)s), %(colon)s, %(colon_escaped)s)
                          || ':job-' || j.id || ':' || greatest(j.attempts, 1),
                      j.type || ':job-' || j.id || ':' || greatest(j.attempts, 1))
      AND run_id = 'job-' || j.id AND function_name = j.type
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
                  WHERE r.run_key IN (replace(replace(j.type, %(pct)s, %(pct_escaped)s), %(colon)s,
                                              %(colon_escaped)s)
                                          || ':job-' || j.id || ':' || greatest(j.attempts, 1),
                                      j.type || ':job-' || j.id || ':' || greatest(j.attempts, 1))
                    AND r.run_id = 'job-' || j.id AND r.function_name = j.type
                    AND r.attempt = greatest(j.attempts, 1))
ORDER BY j.id LIMIT %(limit)s;

-- name: recorded_until_id
-- The backfill bound the rollout recorded in its checkpoint, when no param gives one.
SELECT (checkpoint ->> 'backfill_until_id')::bigint AS until_id
FROM phasegate_rollout_state WHERE checkpoint ? 'backfill_until_id'
ORDER BY updated_at DESC LIMIT 1;
