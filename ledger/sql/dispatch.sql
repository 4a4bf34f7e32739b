-- name: register_dispatch
-- Claim a dispatch key; inserts nothing when the key is taken (row count 1: this caller won).
INSERT INTO background_dispatch_window
    (dispatch_key, source, window_start, window_end, correlation_id)
VALUES (%(dispatch_key)s, %(source)s, %(window_start)s, %(window_end)s, %(correlation_id)s)
ON CONFLICT (dispatch_key) DO NOTHING;

-- name: mark_dispatch
-- Move a DISPATCHING window to a terminal status; any other current status matches no row.
UPDATE background_dispatch_window
SET status = %(status)s::background_dispatch_status,
    event_id = coalesce(%(event_id)s, event_id),
    failure_message = %(failure_message)s,
    updated_at = now()
WHERE dispatch_key = %(dispatch_key)s AND status = 'DISPATCHING'
RETURNING dispatch_key, source, window_start, window_end, correlation_id, event_id, status,
          failure_message, created_at, updated_at;

-- name: get_dispatch
-- One dispatch window by its key.
SELECT dispatch_key, source, window_start, window_end, correlation_id, event_id, status,
       failure_message, created_at, updated_at
FROM background_dispatch_window
WHERE dispatch_key = %(dispatch_key)s;

-- name: stuck_dispatches
-- Windows still DISPATCHING older_than seconds after creation and after their last touch.
SELECT dispatch_key, source, window_start, window_end, correlation_id, event_id, status,
       failure_message, created_at, updated_at
FROM background_dispatch_window
WHERE status = 'DISPATCHING'
  AND created_at < now() - make_interval(secs => %(older_than)s)
  AND updated_at < now() - make_interval(secs => %(older_than)s)
ORDER BY created_at
LIMIT %(limit)s;

-- name: take_over_dispatch
-- Take over a stuck DISPATCHING window; bumping updated_at lets only the first recoverer match.
UPDATE background_dispatch_window
SET updated_at = now()
WHERE dispatch_key = %(dispatch_key)s AND status = 'DISPATCHING'
  AND updated_at < now() - make_interval(secs => %(older_than)s)
RETURNING dispatch_key, source, window_start, window_end, correlation_id, event_id, status,
          failure_message, created_at, updated_at;
