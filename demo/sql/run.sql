-- name: drop_demo_database
-- Drop the demo's own database (only ever phasegate_demo on the embedded local server), ending its sessions.
DROP DATABASE IF EXISTS phasegate_demo WITH (FORCE);

-- name: create_demo_database
-- Create the demo's own database on the embedded local server.
CREATE DATABASE phasegate_demo;
