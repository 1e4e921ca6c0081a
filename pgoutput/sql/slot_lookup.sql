-- $1 = slot name. Returns the slot's plugin, database, whether it is in use,
-- where decoding resumes, its type and whether PostgreSQL invalidated it.
SELECT plugin, database, active, active_pid, confirmed_flush_lsn::text, slot_type,
       coalesce(wal_status, '')
FROM pg_catalog.pg_replication_slots
WHERE slot_name = $1
