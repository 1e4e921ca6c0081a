-- Catalog version 2: the scheduler's state (fuse, SLA tier, pace, AUTO cost
-- model, backoff) and the SKIPPED history action of a fuse reset.
ALTER TABLE pgtrickle.stream_tables
  ADD COLUMN fuse_max_rows bigint NOT NULL DEFAULT 0,
  ADD COLUMN fuse_max_multiple double precision NOT NULL DEFAULT 0,
  ADD COLUMN fuse_state text NOT NULL DEFAULT 'OK' CHECK (fuse_state IN ('OK', 'BLOWN')),
  ADD COLUMN fuse_reason text,
  ADD COLUMN fuse_delta_rows bigint,
  ADD COLUMN sla_ms bigint,
  ADD COLUMN tier text,
  ADD COLUMN effective_interval_ms bigint,
  ADD COLUMN cost_slope_ms_per_row double precision,
  ADD COLUMN cost_intercept_ms double precision,
  ADD COLUMN cost_samples int NOT NULL DEFAULT 0,
  ADD COLUMN next_retry_at timestamptz;

ALTER TABLE pgtrickle.refresh_history DROP CONSTRAINT refresh_history_action_check;
ALTER TABLE pgtrickle.refresh_history
  ADD CONSTRAINT refresh_history_action_check
  CHECK (action IN ('FULL', 'DIFFERENTIAL', 'NO_DATA', 'SKIPPED'));

DROP VIEW pgtrickle.pg_stat_stream_tables;
CREATE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT st.schema_name, st.table_name, st.status, st.requested_mode, st.effective_mode,
       st.schedule, st.effective_interval_ms,
       now() - st.last_change_commit_time AS staleness,
       st.last_refresh_at, st.frontier, st.consecutive_failures, st.next_retry_at, st.last_error,
       st.full_refresh_reason,
       st.fuse_state, st.fuse_reason, st.fuse_delta_rows,
       st.sla_ms, st.tier,
       st.cost_samples, st.cost_slope_ms_per_row, st.cost_intercept_ms,
       h.refresh_count, h.full_count, h.differential_count, h.failure_count,
       h.avg_duration_ms
FROM pgtrickle.stream_tables st
LEFT JOIN LATERAL (
  SELECT count(*) FILTER (WHERE error IS NULL) AS refresh_count,
         count(*) FILTER (WHERE action = 'FULL' AND error IS NULL) AS full_count,
         count(*) FILTER (WHERE action = 'DIFFERENTIAL' AND error IS NULL) AS differential_count,
         count(*) FILTER (WHERE error IS NOT NULL) AS failure_count,
         avg(duration_ms) FILTER (WHERE error IS NULL) AS avg_duration_ms
  FROM pgtrickle.refresh_history rh WHERE rh.stream_table_id = st.id
) h ON true;
