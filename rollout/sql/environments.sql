-- name: create_ci_database
-- The throwaway database of --env ci (outside a transaction: CREATE DATABASE cannot run in one).
CREATE DATABASE phasegate_ci;
