-- name: claim_effect
-- Claim an effect key for this attempt; returns no row when the effect already happened.
INSERT INTO background_job_effect (effect_key, job_id, run_key)
VALUES (%(effect_key)s, %(job_id)s, %(run_key)s)
ON CONFLICT (effect_key) DO NOTHING
RETURNING effect_key;

-- name: effect_result
-- The result the first run of an effect stored.
SELECT result FROM background_job_effect WHERE effect_key = %(effect_key)s;

-- name: store_effect_result
-- Store an effect's result with its key (in the transaction that claimed the key).
UPDATE background_job_effect SET result = %(result)s WHERE effect_key = %(effect_key)s;
