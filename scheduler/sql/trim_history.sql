-- Refresh-history retention: deletes at most $3 rows that are older than
-- $2 seconds (0 = no age limit) or beyond the newest $1 rows of their
-- stream table (0 = no row limit). The newest successful FULL refresh of
-- each stream table is kept whatever its age: the AUTO cost model compares
-- with its duration. Returns one row per deleted row.
WITH ranked AS (
  SELECT id, finished_at,
         row_number() OVER w AS newest_first,
         id = max(id) FILTER (WHERE action = 'FULL' AND error IS NULL) OVER (PARTITION BY stream_table_id)
           AS last_full
  FROM pgtrickle.refresh_history
  WINDOW w AS (PARTITION BY stream_table_id ORDER BY id DESC)
), doomed AS (
  SELECT id FROM ranked
  WHERE NOT coalesce(last_full, false)
    AND (($1::bigint > 0 AND newest_first > $1::bigint)
         OR ($2::float8 > 0 AND finished_at < now() - $2::float8 * interval '1 second'))
  LIMIT $3::bigint
)
DELETE FROM pgtrickle.refresh_history h USING doomed WHERE h.id = doomed.id
RETURNING h.id
