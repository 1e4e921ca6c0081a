-- $1 = publication name. Published tables whose UPDATE/DELETE would not carry
-- the full old row (anything but REPLICA IDENTITY FULL).
SELECT pt.schemaname, pt.tablename, c.relreplident::text
FROM pg_catalog.pg_publication_tables pt
JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
WHERE pt.pubname = $1 AND c.relreplident <> 'f'
ORDER BY 1, 2
