-- name: enqueue_job
-- Insert a PENDING job without the expand phase's columns (they may not exist yet).
INSERT INTO background_job (type, payload, max_attempts, run_at)
VALUES (%(type)s, %(payload)s, %(max_attempts)s, coalesce(%(run_at)s::timestamptz, now()))
RETURNING id;

-- name: enqueue_job_ledger
-- Insert a PENDING job carrying its correlation id and dispatch key (once expanded).
INSERT INTO background_job (type, payload, max_attempts, run_at, correlation_id, dispatch_key)
VALUES (%(type)s, %(payload)s, %(max_attempts)s, coalesce(%(run_at)s::timestamptz, now()),
        %(correlation_id)s, %(dispatch_key)s)
RETURNING id;

-- name: claim_job
-- Take the oldest due PENDING job (of job_types, unless NULL) for worker_id, skipping locked rows.
-- The payload's size comes first: over max_payload_bytes the payload is not sent (NULL), so
-- an oversized one is dead-lettered without ever reaching the worker's memory.
UPDATE background_job
SET status = 'RUNNING', locked_at = now(), locked_by = %(worker_id)s,
    attempts = attempts + 1, updated_at = now()
WHERE id = (SELECT id FROM background_job
            WHERE status = 'PENDING' AND run_at <= now()
              AND (%(job_types)s::text[] IS NULL OR type = ANY(%(job_types)s::text[]))
            ORDER BY run_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
RETURNING id, type, attempts, max_attempts, locked_by,
          octet_length(payload::text) AS payload_bytes,
          CASE WHEN octet_length(payload::text) <= %(max_payload_bytes)s THEN payload END
              AS payload;

-- name: claim_job_ledger
-- claim_job (payload sent only within max_payload_bytes), also returning the correlation id and dispatch key.
UPDATE background_job
SET status = 'RUNNING', locked_at = now(), locked_by = %(worker_id)s,
    attempts = attempts + 1, updated_at = now()
WHERE id = (SELECT id FROM background_job
            WHERE status = 'PENDING' AND run_at <= now()
              AND (%(job_types)s::text[] IS NULL OR type = ANY(%(job_types)s::text[]))
            ORDER BY run_at, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
RETURNING id, type, attempts, max_attempts, locked_by, correlation_id, dispatch_key,
          octet_length(payload::text) AS payload_bytes,
          CASE WHEN octet_length(payload::text) <= %(max_payload_bytes)s THEN payload END
              AS payload;

-- name: heartbeat_job
-- Refresh the lease of a RUNNING job, if worker_id still holds this attempt.
UPDATE background_job
SET locked_at = now()
WHERE id = %(job_id)s AND status = 'RUNNING' AND locked_by = %(worker_id)s
  AND attempts = %(attempts)s;

-- name: job_succeeded
-- Settle a RUNNING job as SUCCEEDED, if worker_id still holds this attempt.
UPDATE background_job
SET status = 'SUCCEEDED', locked_at = NULL, locked_by = NULL, last_error = NULL,
    updated_at = now()
WHERE id = %(job_id)s AND status = 'RUNNING' AND locked_by = %(worker_id)s
  AND attempts = %(attempts)s;

-- name: retry_job_later
-- Put a RUNNING job back to PENDING, due after delay seconds, if worker_id still holds it.
UPDATE background_job
SET status = 'PENDING', locked_at = NULL, locked_by = NULL,
    run_at = now() + make_interval(secs => %(delay)s), last_error = %(last_error)s,
    updated_at = now()
WHERE id = %(job_id)s AND status = 'RUNNING' AND locked_by = %(worker_id)s
  AND attempts = %(attempts)s;

-- name: job_failed
-- Settle a RUNNING job as FAILED, if worker_id still holds this attempt.
UPDATE background_job
SET status = 'FAILED', locked_at = NULL, locked_by = NULL, last_error = %(last_error)s,
    updated_at = now()
WHERE id = %(job_id)s AND status = 'RUNNING' AND locked_by = %(worker_id)s
  AND attempts = %(attempts)s;

-- name: open_dead_letter
-- Open a dead letter for a failed job (its payload copied in the database); a repeat is a no-op.
-- The payload never travels through the worker: it may be one the claim refused to load.
-- One OPEN dead letter per job (the conflict target).
INSERT INTO background_dead_letter
    (job_id, job_type, payload, error_class, last_error, attempts, correlation_id)
SELECT j.id, %(job_type)s, j.payload, %(error_class)s::background_error_class,
       %(last_error)s, %(attempts)s, %(correlation_id)s
FROM background_job j
WHERE j.id = %(job_id)s
ON CONFLICT (job_id) WHERE status = 'OPEN' DO NOTHING;

-- name: expired_jobs
-- Lock RUNNING jobs whose lease ran out more than lease_seconds ago, oldest first (no payload: rescue needs none).
SELECT id, type, attempts, max_attempts, locked_by
FROM background_job
WHERE status = 'RUNNING' AND locked_at < now() - make_interval(secs => %(lease_seconds)s)
ORDER BY locked_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: expired_jobs_ledger
-- expired_jobs, also returning the expand phase's correlation id and dispatch key.
SELECT id, type, attempts, max_attempts, locked_by, correlation_id, dispatch_key
FROM background_job
WHERE status = 'RUNNING' AND locked_at < now() - make_interval(secs => %(lease_seconds)s)
ORDER BY locked_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: requeue_expired_job
-- Put a job whose lease expired back to PENDING, due now (its row is locked by expired_jobs).
UPDATE background_job
SET status = 'PENDING', locked_at = NULL, locked_by = NULL, run_at = now(),
    last_error = %(last_error)s, updated_at = now()
WHERE id = %(job_id)s;

-- name: fail_expired_job
-- Settle a job whose lease expired and that has no attempt left as FAILED.
UPDATE background_job
SET status = 'FAILED', locked_at = NULL, locked_by = NULL, last_error = %(last_error)s,
    updated_at = now()
WHERE id = %(job_id)s;
