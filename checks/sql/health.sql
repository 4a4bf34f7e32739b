-- name: long_transactions
-- Transactions open longer than the threshold (other than this check's own session).
SELECT pid, usename, application_name, state, xact_start,
       extract(epoch FROM now() - xact_start)::bigint AS open_seconds, left(query, 200) AS query
FROM pg_stat_activity
WHERE xact_start < now() - make_interval(secs => %(seconds)s) AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
ORDER BY xact_start LIMIT %(limit)s;

-- name: idle_in_transaction
-- Sessions idle inside an open transaction for longer than the threshold.
SELECT pid, usename, application_name, state, state_change,
       extract(epoch FROM now() - state_change)::bigint AS idle_seconds, left(query, 200) AS query
FROM pg_stat_activity
WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
  AND state_change < now() - make_interval(secs => %(seconds)s) AND pid <> pg_backend_pid()
ORDER BY state_change LIMIT %(limit)s;

-- name: lock_waiters
-- Sessions waiting for a heavyweight lock, with the sessions blocking them.
SELECT pid, usename, application_name, wait_event, pg_blocking_pids(pid) AS blocked_by,
       extract(epoch FROM now() - coalesce(query_start, state_change))::bigint AS waiting_seconds,
       left(query, 200) AS query
FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()
ORDER BY query_start LIMIT %(limit)s;

-- name: replication_lag
-- Each replica's replay lag in time and in bytes of WAL.
SELECT application_name, client_addr, state,
       extract(epoch FROM replay_lag) AS replay_lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS replay_lag_bytes
FROM pg_stat_replication ORDER BY application_name;
