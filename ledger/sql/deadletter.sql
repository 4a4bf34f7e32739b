-- name: list_dead_letters
-- A page of dead letters, newest first by (dead_at, id), after the cursor; each filter applies unless NULL.
-- Keyset paging: the page after (after_dead_at, after_id) is the rows strictly older in
-- that order, so a page never repeats or skips a row however many are added meanwhile.
-- A payload over max_payload_bytes is left out (NULL, its size in payload_omitted_bytes):
-- a page must not carry every oversized payload; dlq.show has it whole.
SELECT id, job_id, job_type,
       CASE WHEN octet_length(payload::text) <= %(max_payload_bytes)s THEN payload END AS payload,
       CASE WHEN octet_length(payload::text) > %(max_payload_bytes)s
            THEN octet_length(payload::text) END AS payload_omitted_bytes,
       error_class, last_error, attempts, correlation_id,
       status, dead_at, resolved_at, resolved_by, resolution_reason, requeued_job_id
FROM background_dead_letter
WHERE (%(job_type)s::text IS NULL OR job_type = %(job_type)s::text)
  AND (%(status)s::background_dead_letter_status IS NULL
       OR status = %(status)s::background_dead_letter_status)
  AND (%(error_class)s::background_error_class IS NULL
       OR error_class = %(error_class)s::background_error_class)
  AND (%(older_than)s::float8 IS NULL
       OR dead_at < now() - make_interval(secs => %(older_than)s::float8))
  AND (%(after_dead_at)s::timestamptz IS NULL
       OR (dead_at, id) < (%(after_dead_at)s::timestamptz, %(after_id)s::bigint))
ORDER BY dead_at DESC, id DESC
LIMIT %(limit)s;

-- name: get_dead_letter
-- One dead letter by its id.
SELECT id, job_id, job_type, payload, error_class, last_error, attempts, correlation_id,
       status, dead_at, resolved_at, resolved_by, resolution_reason, requeued_job_id
FROM background_dead_letter
WHERE id = %(id)s;

-- name: resolve_dead_letter
-- Close an OPEN dead letter (REQUEUED or DISCARDED); a closed one matches no row, so one operator wins.
UPDATE background_dead_letter
SET status = %(status)s::background_dead_letter_status, resolved_at = now(),
    resolved_by = %(operator)s, resolution_reason = %(reason)s
WHERE id = %(id)s AND status = 'OPEN'
RETURNING id, job_id, job_type, payload, error_class, last_error, attempts, correlation_id,
          status, dead_at, resolved_at, resolved_by, resolution_reason, requeued_job_id;

-- name: copy_job_for_requeue
-- A fresh PENDING job (attempts 0) with the dead job's type, payload and dispatch key.
INSERT INTO background_job (type, payload, max_attempts, correlation_id, dispatch_key)
SELECT type, payload, max_attempts, %(correlation_id)s, dispatch_key
FROM background_job
WHERE id = %(job_id)s
RETURNING id;

-- name: link_requeued_job
-- Record on the dead letter which job its requeue created.
UPDATE background_dead_letter SET requeued_job_id = %(requeued_job_id)s WHERE id = %(id)s;

-- name: audit_dead_letter_action
-- Append one operator action on a dead letter to the audit (append-only by trigger).
INSERT INTO background_operator_audit
    (operator, action, target_kind, target_id, outcome, reason, detail)
VALUES (%(operator)s, %(action)s, 'dead_letter', %(target_id)s, %(outcome)s, %(reason)s,
        %(detail)s);

-- name: dead_letter_audit
-- The audit trail of one dead letter, oldest first.
SELECT operator, action, outcome, reason, detail, at
FROM background_operator_audit
WHERE target_kind = 'dead_letter' AND target_id = %(target_id)s
ORDER BY at, id;

-- name: job_lineage
-- A job and every earlier job it is a requeue of (a dead letter's job may be a requeue too).
WITH RECURSIVE chain(job_id) AS (
    SELECT %(job_id)s::bigint
    UNION
    SELECT d.job_id FROM background_dead_letter d JOIN chain c ON d.requeued_job_id = c.job_id
)
SELECT job_id FROM chain;
