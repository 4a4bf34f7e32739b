-- name: prune_runs
-- One batch of finished runs older than the cutoff, never one whose job has an OPEN dead
-- letter or whose dispatch window is still open (the dedupe window must keep its history).
WITH doomed AS (
    SELECT r.id FROM background_function_run r
    WHERE r.requested_at < %(cutoff)s
      AND r.status <> 'RUNNING'
      AND NOT EXISTS (SELECT 1 FROM background_dead_letter d
                      WHERE d.job_id = r.job_id AND d.status = 'OPEN')
      AND NOT EXISTS (SELECT 1 FROM background_dispatch_window w
                      WHERE w.dispatch_key = r.dispatch_key AND w.window_end > now())
    ORDER BY r.requested_at
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM background_function_run r USING doomed WHERE r.id = doomed.id;

-- name: prune_windows
-- One batch of dispatch windows that closed before the cutoff (and so before now()).
WITH doomed AS (
    SELECT id FROM background_dispatch_window
    WHERE window_end < least(%(cutoff)s, now())
    ORDER BY window_end
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM background_dispatch_window w USING doomed WHERE w.id = doomed.id;
