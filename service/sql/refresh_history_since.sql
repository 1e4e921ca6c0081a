-- Refresh history rows with id > $1 (oldest first, at most $2), for the
-- refresh counters and duration histograms.
SELECT h.id, st.schema_name || '.' || st.table_name, h.action, h.error IS NULL,
       h.duration_ms, h.delta_rows, h.rows_affected, coalesce(h.error, '')
FROM pgtrickle.refresh_history h
JOIN pgtrickle.stream_tables st ON st.id = h.stream_table_id
WHERE h.id > $1
ORDER BY h.id
LIMIT $2
