-- name: read_flags
-- Every flag the rollout has set (unset flags read as their defaults).
SELECT name, value FROM phasegate_flag;

-- name: set_flag
-- Upsert one flag, recording who set it and when.
INSERT INTO phasegate_flag (name, value, updated_at, updated_by)
VALUES (%(name)s, %(value)s, now(), %(actor)s)
ON CONFLICT (name) DO UPDATE
SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by;
