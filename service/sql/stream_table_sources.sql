-- Source relations of the stream tables, in a stable order; $1 = one
-- stream table's id, or NULL for all.
SELECT stream_table_id, source_schema || '.' || source_name, source_oid,
       source_stream_table_id IS NOT NULL
FROM pgtrickle.dependencies
WHERE $1::bigint IS NULL OR stream_table_id = $1
ORDER BY stream_table_id, source_schema, source_name
