-- name: database_reachable
-- A round trip to the target database: does it answer at all?
SELECT 1;

-- name: has_background_job
-- Whether the application's background_job table exists (is this the application's database?).
SELECT to_regclass('background_job') IS NOT NULL;
