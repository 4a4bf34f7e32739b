-- name: state_installed
-- Whether the kit's rollout state table exists yet (it does once the kit is installed).
SELECT to_regclass('phasegate_rollout_state') IS NOT NULL;

-- name: phase_state
-- The state row of one phase.
SELECT phase, status, rollout_id, direction, current_action, completed_actions, checkpoint,
       gate_results, actor, started_at, updated_at
FROM phasegate_rollout_state
WHERE phase = %(phase)s;

-- name: save_phase_state
-- Insert or overwrite the state row of one phase (JSON columns arrive as JSON text).
INSERT INTO phasegate_rollout_state AS s
    (phase, status, rollout_id, direction, current_action, completed_actions, checkpoint,
     gate_results, actor, started_at, updated_at)
VALUES (%(phase)s, %(status)s, %(rollout_id)s, %(direction)s, %(current_action)s,
        CAST(%(completed)s AS jsonb), CAST(%(checkpoint)s AS jsonb), CAST(%(gate)s AS jsonb),
        %(actor)s, %(started_at)s, now())
ON CONFLICT (phase) DO UPDATE
SET status = EXCLUDED.status, rollout_id = EXCLUDED.rollout_id,
    direction = EXCLUDED.direction, current_action = EXCLUDED.current_action,
    completed_actions = EXCLUDED.completed_actions, checkpoint = EXCLUDED.checkpoint,
    gate_results = EXCLUDED.gate_results, actor = EXCLUDED.actor,
    started_at = EXCLUDED.started_at, updated_at = now();

-- name: append_rollout_event
-- Append one event to the rollout's log (append-only by trigger).
INSERT INTO phasegate_rollout_event (rollout_id, phase, action_id, event, outcome, actor, detail)
VALUES (%(rollout_id)s, %(phase)s, %(action_id)s, %(event)s, %(outcome)s, %(actor)s,
        CAST(%(detail)s AS jsonb));

-- name: recent_rollout_events
-- The newest events (of one rollout, unless rollout_id is NULL), newest first.
SELECT id, rollout_id, phase, action_id, event, outcome, actor, detail, at
FROM phasegate_rollout_event
WHERE (%(rollout_id)s::text IS NULL OR rollout_id = %(rollout_id)s::text)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: try_target_lock
-- Take the target's rollout lock for this session, without waiting (false: someone holds it).
SELECT pg_try_advisory_lock(%(lock_key)s);

-- name: target_lock_holder
-- Who holds the target's rollout lock: the holder session's login role (which a client cannot choose), its self-declared application_name and pid, and this session's own login role to compare with. objsubid 1: the one-bigint form of the key (the two-int4 form with the same halves is another lock).
SELECT a.usename, a.application_name, a.pid, session_user AS me
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted
  AND l.objid = (%(lock_key)s::bigint & 4294967295)::oid
  AND l.classid = (%(lock_key)s::bigint >> 32)::oid
  AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database());

-- name: target_lock_alive
-- A round trip on the lock's session: fails when the server ended it (and the lock with it).
SELECT 1;

-- name: release_target_lock
-- Give the target's rollout lock back.
SELECT pg_advisory_unlock(%(lock_key)s);
