-- name: runs_past_bound
-- Runs the pruner should have removed: requested before the bound (+ slack), not RUNNING,
-- not protected by an OPEN dead letter or an open dedupe window. Range scan of requested_at.
SELECT r.id, r.run_key, r.status, r.requested_at,
       extract(epoch FROM now() - r.requested_at)::bigint / 86400 AS age_days
FROM background_function_run r
WHERE r.requested_at < now() - make_interval(secs => %(bound)s)
  AND r.status <> 'RUNNING'
  AND NOT EXISTS (SELECT 1 FROM background_dead_letter d
                  WHERE d.job_id = r.job_id AND d.status = 'OPEN')
  AND NOT EXISTS (SELECT 1 FROM background_dispatch_window w
                  WHERE w.dispatch_key = r.dispatch_key AND w.window_end > now())
ORDER BY r.requested_at LIMIT %(limit)s;

-- name: windows_past_bound
-- Dispatch windows that closed before the bound (+ slack) and are still there.
SELECT id, dispatch_key, window_end,
       extract(epoch FROM now() - window_end)::bigint / 86400 AS age_days
FROM background_dispatch_window
WHERE window_end < now() - make_interval(secs => %(bound)s)
ORDER BY window_end LIMIT %(limit)s;

-- name: dead_letters_without_history
-- OPEN dead letters whose job has no run left: its history was deleted while still open.
SELECT d.id AS dead_letter_id, d.job_id, d.job_type, d.dead_at
FROM background_dead_letter d
WHERE d.status = 'OPEN'
  AND NOT EXISTS (SELECT 1 FROM background_function_run r WHERE r.run_id = 'job-' || d.job_id)
ORDER BY d.dead_at LIMIT %(limit)s;

-- name: recent_runs_without_window
-- Recent runs whose dispatch window is gone: a window deleted inside its dedupe window.
SELECT r.id, r.run_key, r.dispatch_key, r.requested_at
FROM background_function_run r
WHERE r.requested_at > now() - make_interval(secs => %(guard)s)
  AND r.dispatch_key IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM background_dispatch_window w WHERE w.dispatch_key = r.dispatch_key)
ORDER BY r.requested_at DESC LIMIT %(limit)s;
