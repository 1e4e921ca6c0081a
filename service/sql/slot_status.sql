-- The service's replication slot as the status collector reports it.
-- $1 = slot name. Lag in bytes against the current WAL position; flush_lag is
-- PostgreSQL's own measure for the slot's WAL sender (NULL when caught up).
SELECT s.active,
       s.confirmed_flush_lsn::text,
       s.restart_lsn::text,
       pg_current_wal_lsn()::text,
       coalesce(s.wal_status, ''),
       coalesce((pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint, 0),
       coalesce((pg_current_wal_lsn() - s.restart_lsn)::bigint, 0),
       coalesce(extract(epoch FROM r.flush_lag)::float8, 0)
FROM pg_replication_slots s
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
WHERE s.slot_name = $1
