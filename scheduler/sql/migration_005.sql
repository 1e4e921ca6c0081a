-- Catalog version 5: the refresh counters live with the stream table, so
-- that trimming the refresh history (its retention, HistoryRetention) does
-- not change them. Taken from the history once, then counted by every
-- recorded refresh (catalog::RecordRefresh, RecordNoData, RecordFailure).
ALTER TABLE pgtrickle.stream_tables
  ADD COLUMN refresh_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN full_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN differential_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN failure_count bigint NOT NULL DEFAULT 0,
  ADD COLUMN refresh_duration_ms double precision NOT NULL DEFAULT 0;

UPDATE pgtrickle.stream_tables st
SET refresh_count = h.refresh_count, full_count = h.full_count,
    differential_count = h.differential_count, failure_count = h.failure_count,
    refresh_duration_ms = h.refresh_duration_ms
FROM (
  SELECT stream_table_id,
         count(*) FILTER (WHERE error IS NULL) AS refresh_count,
         count(*) FILTER (WHERE action = 'FULL' AND error IS NULL) AS full_count,
         count(*) FILTER (WHERE action = 'DIFFERENTIAL' AND error IS NULL) AS differential_count,
         count(*) FILTER (WHERE error IS NOT NULL) AS failure_count,
         coalesce(sum(duration_ms) FILTER (WHERE error IS NULL), 0) AS refresh_duration_ms
  FROM pgtrickle.refresh_history GROUP BY stream_table_id
) h
WHERE h.stream_table_id = st.id;

-- The same columns as version 3, the counters read from the stream table.
CREATE OR REPLACE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT st.schema_name, st.table_name, st.status, st.requested_mode, st.effective_mode,
       st.schedule, st.effective_interval_ms,
       now() - st.last_change_commit_time AS staleness,
       st.last_refresh_at, st.frontier, st.consecutive_failures, st.next_retry_at, st.last_error,
       st.full_refresh_reason,
       st.fuse_state, st.fuse_reason, st.fuse_delta_rows,
       st.sla_ms, st.tier,
       st.cost_samples, st.cost_slope_ms_per_row, st.cost_intercept_ms,
       st.refresh_count, st.full_count, st.differential_count, st.failure_count,
       st.refresh_duration_ms / nullif(st.refresh_count, 0) AS avg_duration_ms,
       st.downstream_publication
FROM pgtrickle.stream_tables st;
