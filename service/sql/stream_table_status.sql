-- Every stream table with what the status collector publishes, and its
-- source relations' OIDs (one row per source; a stream table without
-- sources has one row with a NULL oid). fuse_state (catalog version 2) is
-- read through to_jsonb: NULL on a catalog without it.
SELECT st.id, st.schema_name || '.' || st.table_name, st.status, st.requested_mode,
       st.effective_mode, st.frontier, st.consecutive_failures,
       extract(epoch FROM st.last_refresh_at)::float8,
       d.source_oid, to_jsonb(st) ->> 'fuse_state'
FROM pgtrickle.stream_tables st
LEFT JOIN pgtrickle.dependencies d ON d.stream_table_id = st.id
ORDER BY st.schema_name, st.table_name, d.source_oid
