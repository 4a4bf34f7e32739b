-- name: duplicate_dispatch_keys
-- Dispatch keys registered more than once (only possible if the unique constraint is gone).
SELECT dispatch_key, count(*) AS windows, array_agg(id ORDER BY id) AS window_ids
FROM background_dispatch_window
GROUP BY dispatch_key HAVING count(*) > 1
ORDER BY dispatch_key LIMIT %(limit)s;

-- name: dispatch_key_many_runs
-- Dispatch keys whose work started as more than one run (the queue delivered it twice).
SELECT dispatch_key, count(DISTINCT run_id) AS runs, min(run_id) AS first_run_id,
       max(run_id) AS last_run_id
FROM background_function_run
WHERE dispatch_key IS NOT NULL AND requested_at >= %(since)s
GROUP BY dispatch_key HAVING count(DISTINCT run_id) > 1
ORDER BY dispatch_key LIMIT %(limit)s;

-- name: enqueued_and_inline
-- One source's overlapping windows both ENQUEUED and run INLINE_EMERGENCY: the work ran twice.
SELECT q.source, q.dispatch_key AS enqueued_key, i.dispatch_key AS inline_key,
       q.window_start, q.window_end
FROM background_dispatch_window q
JOIN background_dispatch_window i
  ON i.source = q.source AND i.status = 'INLINE_EMERGENCY'
 AND i.window_start < q.window_end AND q.window_start < i.window_end
WHERE q.status = 'ENQUEUED'
ORDER BY q.window_start DESC LIMIT %(limit)s;

-- name: stuck_dispatching
-- Windows still DISPATCHING after the threshold: a sender died between claim and enqueue.
SELECT id, dispatch_key, source, created_at,
       extract(epoch FROM now() - created_at)::bigint AS age_seconds
FROM background_dispatch_window
WHERE status = 'DISPATCHING' AND created_at < now() - make_interval(secs => %(seconds)s)
ORDER BY created_at LIMIT %(limit)s;

-- name: stuck_dispatching_count
-- How many windows are stuck DISPATCHING (the evidence above is a sample).
SELECT count(*) AS n FROM background_dispatch_window
WHERE status = 'DISPATCHING' AND created_at < now() - make_interval(secs => %(seconds)s);
