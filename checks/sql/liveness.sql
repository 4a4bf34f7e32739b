-- name: runs_past_lease
-- RUNNING attempts whose last sign of life is older than the lease.
SELECT id, run_key, function_name, started_at, updated_at,
       extract(epoch FROM now() - greatest(started_at, updated_at))::bigint AS silent_seconds
FROM background_function_run
WHERE status = 'RUNNING' AND started_at < now() - make_interval(secs => %(lease)s)
  AND updated_at < now() - make_interval(secs => %(lease)s)
ORDER BY started_at LIMIT %(limit)s;

-- name: jobs_past_lease
-- RUNNING jobs whose lease heartbeat (locked_at) is older than the lease.
SELECT id, type, locked_by, locked_at,
       extract(epoch FROM now() - locked_at)::bigint AS silent_seconds
FROM background_job
WHERE status = 'RUNNING' AND locked_at < now() - make_interval(secs => %(lease)s)
ORDER BY locked_at LIMIT %(limit)s;

-- name: dead_letter_growth
-- OPEN dead letters that arrived in the last window and the window before, per job type.
SELECT job_type,
       count(*) FILTER (WHERE dead_at >= now() - make_interval(secs => %(window)s)) AS recent,
       count(*) FILTER (WHERE dead_at < now() - make_interval(secs => %(window)s)) AS previous
FROM background_dead_letter
WHERE status = 'OPEN' AND dead_at >= now() - make_interval(secs => 2 * %(window)s)
GROUP BY job_type ORDER BY recent DESC, job_type;
