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

-- name: requeue_dead_letter
-- Requeue through the database's function (p0014): the letter's own job type and payload, audited; refusals are returned.
SELECT outcome, letter_status, new_job_id, new_correlation_id
FROM phasegate_dlq_requeue(%(id)s::bigint, %(display_name)s::text, %(reason)s::text);

-- name: discard_dead_letter
-- Discard through the database's function (p0014): a non-blank reason, audited; refusals are returned.
SELECT outcome, letter_status FROM phasegate_dlq_discard(%(id)s::bigint, %(display_name)s::text, %(reason)s::text);

-- name: inspect_dead_letter
-- Audit an inspection through the database's function (p0014); a missing letter is returned as not_found.
SELECT outcome, letter_status FROM phasegate_dlq_inspect(%(id)s::bigint, %(display_name)s::text);

-- name: dead_letter_audit
-- The audit trail of one dead letter, oldest first.
SELECT operator, db_role, action, outcome, reason, detail, at
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
