-- name: seed_jobs
-- The baseline's job history over a time span, in a deterministic spread of states by id: 14 in 20 SUCCEEDED, 2 FAILED, 3 PENDING, 1 RUNNING (mod(), not the modulo operator: the convention keeps every percent sign a placeholder).
INSERT INTO background_job (type, payload, status, attempts, max_attempts, run_at, locked_at,
                            locked_by, last_error, created_at, updated_at)
SELECT (ARRAY['email.send','report.render','billing.sync','cron.maintenance'])[1 + mod(g, 4)],
       jsonb_build_object('n', g, 'to', 'user' || mod(g, 997) || '@example.test'),
       s.status::background_job_status,
       CASE s.status WHEN 'FAILED' THEN 5 WHEN 'PENDING' THEN 0 ELSE 1 + mod(g, 2) END,
       5,
       t.created + interval '1 second',
       CASE WHEN s.status = 'RUNNING' THEN now() - make_interval(secs => mod(g, 30)) END,
       CASE WHEN s.status = 'RUNNING' THEN 'worker-' || mod(g, 7) END,
       CASE WHEN s.status = 'FAILED' THEN 'ValidationError: payload field ''to'' rejected (' || g || ')' END,
       t.created,
       t.created + make_interval(secs => 1 + mod(g, 30))
FROM generate_series(1, %(n)s) AS g
CROSS JOIN LATERAL (SELECT CASE
        WHEN mod(g, 20) < 14 THEN 'SUCCEEDED'
        WHEN mod(g, 20) < 16 THEN 'FAILED'
        WHEN mod(g, 20) < 19 THEN 'PENDING'
        ELSE 'RUNNING' END AS status) s
CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (CAST(%(span_seconds)s AS bigint) * (%(n)s - g) / %(n)s) + 60)
                    AS created) t;

-- name: seed_duplicate_ticks
-- The legacy double send: the same maintenance window enqueued twice, for each of the given ticks.
INSERT INTO background_job (type, payload, status, attempts, created_at, updated_at)
SELECT 'cron.maintenance', jsonb_build_object('window', w, 'duplicate', d = 2), 'SUCCEEDED', 1,
       now() - make_interval(mins => w * 5), now() - make_interval(mins => w * 5)
FROM generate_series(1, %(ticks)s) AS w, generate_series(1, 2) AS d;

-- name: analyze_jobs
-- Fresh statistics for the seeded history, so plans and estimates see its real size.
ANALYZE background_job;

-- name: recent_finished_jobs
-- The newest jobs updated within the legacy status TTL: the ones whose Redis status hash still exists.
SELECT id, type, status::text, greatest(attempts, 1), updated_at FROM background_job
WHERE updated_at > now() - make_interval(secs => %(ttl)s) ORDER BY id DESC LIMIT %(limit)s;
