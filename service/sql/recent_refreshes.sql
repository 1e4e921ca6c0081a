-- The newest refreshes of one stream table ($1 = id), at most $2, newest first.
SELECT action, delta_rows, transactions, rows_affected, duration_ms,
       coalesce(reason, ''), coalesce(error, ''),
       extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8,
       coalesce(frontier, '')
FROM pgtrickle.refresh_history
WHERE stream_table_id = $1
ORDER BY id DESC
LIMIT $2
