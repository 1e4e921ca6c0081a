-- $1 = slot name. Creates a logical slot with the pgoutput plugin.
SELECT lsn::text FROM pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')
