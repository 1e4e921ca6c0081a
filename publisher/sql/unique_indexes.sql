-- Unique, plain (no predicate, no expression) indexes of a table with their
-- columns (comma-separated, in index order). $1 = quoted qualified table name.
SELECT ic.relname,
       (SELECT string_agg(a.attname, ',' ORDER BY k.o)
        FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, o)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL
  AND i.indexprs IS NULL AND NOT i.indisprimary
ORDER BY ic.relname
