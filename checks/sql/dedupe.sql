-- name: duplicate_dispatch_keys
-- Dispatch keys registered more than once (only possible if the unique constraint is gone).
SELECT dispatch_key, count(*) AS windows, array_agg(id ORDER BY id) AS window_ids
FROM background_dispatch_window
GROUP BY dispatch_key HAVING count(*) > 1
ORDER BY dispatch_key LIMIT %(limit)s;

-- name: unique_key_enforced
-- Whether a valid, ready, non-partial unique index on dispatch_key exists (then no key can
-- be registered twice, and the full scan for duplicates is skipped).
SELECT EXISTS (
    SELECT 1 FROM pg_index x
    WHERE x.indrelid = 'background_dispatch_window'::regclass
      AND x.indisunique AND x.indisvalid AND x.indisready AND x.indpred IS NULL
      AND x.indnatts = 1 AND x.indkey[0] = (
          SELECT attnum FROM pg_attribute
          WHERE attrelid = 'background_dispatch_window'::regclass AND attname = 'dispatch_key')
) AS enforced;

-- name: dispatch_key_many_runs
-- Dispatch keys whose work started as more than one run (the queue delivered it twice):
-- runs requested since the bound, by the requested_at index; min <> max means two run ids.
-- MATERIALIZED keeps the planner on the requested_at range instead of a walk of every key.
WITH recent AS MATERIALIZED (
    SELECT dispatch_key, run_id FROM background_function_run
    WHERE requested_at >= %(since)s AND dispatch_key IS NOT NULL
)
SELECT dispatch_key, min(run_id) AS first_run_id, max(run_id) AS other_run_id
FROM recent GROUP BY dispatch_key HAVING min(run_id) <> max(run_id)
LIMIT %(limit)s;

-- name: enqueued_and_inline
-- One source's overlapping windows both ENQUEUED and run INLINE_EMERGENCY: the work ran twice.
-- Driven from the (rare) INLINE_EMERGENCY windows; ENQUEUED candidates come from the
-- (status, window_start) index, bounded by the longest window length a source uses.
WITH inline AS MATERIALIZED (
    SELECT dispatch_key, source, window_start, window_end FROM background_dispatch_window
    WHERE status = 'INLINE_EMERGENCY'
)
SELECT q.source, q.dispatch_key AS enqueued_key, i.dispatch_key AS inline_key,
       q.window_start, q.window_end
FROM inline i
CROSS JOIN LATERAL (
    SELECT source, dispatch_key, window_start, window_end FROM background_dispatch_window
    WHERE status = 'ENQUEUED' AND source = i.source
      AND window_start < i.window_end AND i.window_start < window_end
      AND window_start > i.window_start - make_interval(secs => %(max_window)s)
) q
ORDER BY i.window_start DESC, q.window_start DESC LIMIT %(limit)s;

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
