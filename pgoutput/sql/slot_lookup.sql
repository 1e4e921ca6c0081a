-- $1 = slot name. Returns the slot's plugin, database and whether it is in use.
SELECT plugin, database, active, active_pid, confirmed_flush_lsn::text, slot_type
FROM pg_catalog.pg_replication_slots
WHERE slot_name = $1
