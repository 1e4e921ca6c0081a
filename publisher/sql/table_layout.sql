-- The stream table as published now: replica identity, primary key columns
-- (comma-separated, in key order; '' when none), whether it is in the
-- publication, and the published columns (comma-separated in table order;
-- NULL = every column). $1 = quoted qualified table name, $2 = publication.
SELECT c.relreplident::text,
       coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.o)
                 FROM pg_index i
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, o)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = c.oid AND i.indisprimary), ''),
       pr.oid IS NOT NULL,
       CASE WHEN pr.prattrs IS NOT NULL THEN
         (SELECT string_agg(a.attname, ',' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY (pr.prattrs))
       END
FROM pg_class c
LEFT JOIN pg_publication p ON p.pubname = $2
LEFT JOIN pg_publication_rel pr ON pr.prpubid = p.oid AND pr.prrelid = c.oid
WHERE c.oid = $1::regclass
