-- Stream tables for ListStreamTables / GetStreamTable, with the counters of
-- pgtrickle.pg_stat_stream_tables. $1, $2 = schema and name to select one,
-- or NULL for all. The scheduler's columns (fuse, SLA tier, cost model;
-- catalog version 2; the downstream publication, version 3) are read
-- through to_jsonb so that a catalog without them gives NULLs instead of an
-- error.
SELECT st.id, st.schema_name, st.table_name, st.query, st.requested_mode, st.effective_mode,
       coalesce(st.full_refresh_reason, ''), st.schedule, st.status, st.verify,
       st.frontier, coalesce(st.last_error, ''), st.consecutive_failures,
       extract(epoch FROM st.created_at)::float8,
       extract(epoch FROM st.last_refresh_at)::float8,
       extract(epoch FROM st.last_change_commit_time)::float8,
       coalesce(v.refresh_count, 0), coalesce(v.full_count, 0),
       coalesce(v.differential_count, 0), coalesce(v.failure_count, 0),
       coalesce(v.avg_duration_ms, 0),
       (SELECT h.duration_ms
          FROM pgtrickle.refresh_history h
         WHERE h.stream_table_id = st.id AND h.action = 'FULL' AND h.error IS NULL
         ORDER BY h.id DESC LIMIT 1),
       j ->> 'fuse_state', j ->> 'fuse_reason', j ->> 'fuse_max_rows', j ->> 'fuse_max_multiple',
       j ->> 'sla_ms', j ->> 'tier',
       j ->> 'cost_samples', j ->> 'cost_slope_ms_per_row', j ->> 'cost_intercept_ms',
       j ->> 'effective_interval_ms',
       extract(epoch FROM (j ->> 'next_retry_at')::timestamptz)::float8,
       coalesce(j ->> 'downstream_publication', '')
FROM pgtrickle.stream_tables st
JOIN pgtrickle.pg_stat_stream_tables v
  ON v.schema_name = st.schema_name AND v.table_name = st.table_name
CROSS JOIN LATERAL to_jsonb(st) AS j
WHERE $1::text IS NULL OR (st.schema_name = $1 AND st.table_name = $2)
ORDER BY st.schema_name, st.table_name
