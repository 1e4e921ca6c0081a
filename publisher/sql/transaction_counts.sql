-- Rows the current transaction inserted, updated and deleted in a table so
-- far (the pending statistics counters; differences within one transaction
-- are exact). $1 = quoted qualified table name.
SELECT pg_stat_get_xact_tuples_inserted($1::regclass),
       pg_stat_get_xact_tuples_updated($1::regclass),
       pg_stat_get_xact_tuples_deleted($1::regclass)
