-- Downstream publications for CreatePublication / ListPublications: each
-- stream table's recorded publication as PostgreSQL has it now (published
-- columns in table order, replica identity, primary key, operations).
-- $1, $2 = schema and name to select one, or NULL for all.
SELECT st.schema_name || '.' || st.table_name,
       st.downstream_publication,
       coalesce((SELECT string_agg(a.attname, ',' ORDER BY a.attnum)
                 FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND (pr.prattrs IS NULL OR a.attnum = ANY (pr.prattrs))), ''),
       coalesce(c.relreplident::text, ''),
       coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.o)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, o)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary), ''),
       concat_ws(',', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                 CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END)
FROM pgtrickle.stream_tables st
LEFT JOIN pg_publication p ON p.pubname = st.downstream_publication
LEFT JOIN pg_class c
  ON c.oid = to_regclass(quote_ident(st.schema_name) || '.' || quote_ident(st.table_name))
LEFT JOIN pg_publication_rel pr ON pr.prpubid = p.oid AND pr.prrelid = c.oid
WHERE st.downstream_publication IS NOT NULL
  AND ($1::text IS NULL OR (st.schema_name = $1 AND st.table_name = $2))
ORDER BY 1
