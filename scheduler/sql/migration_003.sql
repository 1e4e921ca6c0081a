-- Catalog version 3: downstream publications (publisher/). The name of the
-- PostgreSQL publication the service created for a stream table, NULL when
-- it has none. Only a publication named here is ever altered or dropped by
-- the service; one it did not create is left alone.
ALTER TABLE pgtrickle.stream_tables
  ADD COLUMN downstream_publication text UNIQUE;

-- The same view as version 2, with the publication as its last column.
CREATE OR REPLACE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT st.schema_name, st.table_name, st.status, st.requested_mode, st.effective_mode,
       st.schedule, st.effective_interval_ms,
       now() - st.last_change_commit_time AS staleness,
       st.last_refresh_at, st.frontier, st.consecutive_failures, st.next_retry_at, st.last_error,
       st.full_refresh_reason,
       st.fuse_state, st.fuse_reason, st.fuse_delta_rows,
       st.sla_ms, st.tier,
       st.cost_samples, st.cost_slope_ms_per_row, st.cost_intercept_ms,
       h.refresh_count, h.full_count, h.differential_count, h.failure_count,
       h.avg_duration_ms,
       st.downstream_publication
FROM pgtrickle.stream_tables st
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE error IS NULL) AS refresh_count,
         count(*) FILTER (WHERE action = 'FULL' AND error IS NULL) AS full_count,
         count(*) FILTER (WHERE action = 'DIFFERENTIAL' AND error IS NULL) AS differential_count,
         count(*) FILTER (WHERE error IS NOT NULL) AS failure_count,
         avg(duration_ms) FILTER (WHERE error IS NULL) AS avg_duration_ms
  FROM pgtrickle.refresh_history rh WHERE rh.stream_table_id = st.id
) h ON true;
