-- The names (schema.name) of every stream table.
SELECT schema_name || '.' || table_name FROM pgtrickle.stream_tables
