-- Trickle catalog, version 1. Applied once, in one transaction, by the
-- service (see scheduler/catalog.cc). Plain tables: no extension needed.
CREATE TABLE pgtrickle.stream_tables (
  id bigserial PRIMARY KEY,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  query text NOT NULL,
  requested_mode text NOT NULL CHECK (requested_mode IN ('FULL', 'DIFFERENTIAL', 'AUTO')),
  effective_mode text NOT NULL CHECK (effective_mode IN ('FULL', 'DIFFERENTIAL')),
  full_refresh_reason text,
  schedule text NOT NULL DEFAULT '1s',
  status text NOT NULL DEFAULT 'ACTIVE'
    CHECK (status IN ('ACTIVE', 'ERROR', 'SUSPENDED', 'REINIT')),
  verify boolean NOT NULL DEFAULT false,
  frontier text,                      -- "L" or "L;E1,E2" (commit LSNs), NULL before the first refresh
  needs_full boolean NOT NULL DEFAULT true,
  last_error text,
  consecutive_failures int NOT NULL DEFAULT 0,
  owner name NOT NULL DEFAULT current_user,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_refresh_at timestamptz,
  last_change_commit_time timestamptz,  -- commit time of the newest source change applied
  data_snapshot_time timestamptz,       -- when the snapshot of the last refresh was taken
  UNIQUE (schema_name, table_name)
);

CREATE TABLE pgtrickle.dependencies (
  stream_table_id bigint NOT NULL REFERENCES pgtrickle.stream_tables (id) ON DELETE CASCADE,
  source_oid oid NOT NULL,
  source_schema text NOT NULL,
  source_name text NOT NULL,
  source_stream_table_id bigint REFERENCES pgtrickle.stream_tables (id),
  PRIMARY KEY (stream_table_id, source_oid)
);
CREATE INDEX ON pgtrickle.dependencies (source_oid);

CREATE TABLE pgtrickle.refresh_history (
  id bigserial PRIMARY KEY,
  stream_table_id bigint NOT NULL REFERENCES pgtrickle.stream_tables (id) ON DELETE CASCADE,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  action text NOT NULL CHECK (action IN ('FULL', 'DIFFERENTIAL', 'NO_DATA')),
  delta_rows bigint NOT NULL DEFAULT 0,
  transactions bigint NOT NULL DEFAULT 0,
  rows_affected bigint NOT NULL DEFAULT 0,
  duration_ms double precision NOT NULL,
  frontier text,
  reason text,
  error text
);
CREATE INDEX ON pgtrickle.refresh_history (stream_table_id, id);

CREATE VIEW pgtrickle.pg_stat_stream_tables AS
SELECT st.schema_name, st.table_name, st.status, st.requested_mode, st.effective_mode,
       st.schedule,
       now() - st.last_change_commit_time AS staleness,
       st.last_refresh_at, st.frontier, st.consecutive_failures, st.last_error,
       st.full_refresh_reason,
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
