-- $1 = slot name. Drops a slot (used only for one PostgreSQL invalidated).
SELECT pg_catalog.pg_drop_replication_slot($1)
