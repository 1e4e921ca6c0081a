-- The first statement of a refresh: it takes the REPEATABLE READ snapshot
-- and, in that snapshot, reads the visible columns of the sources ($1:
-- '{oid,...}') as one string, compared with the plan's (ColumnsDigest)
-- without a round trip of its own. One line per column: oid, the name
-- double-quoted with its quotes doubled, format_type.
SELECT pg_current_snapshot()::text, now()::text,
       (SELECT coalesce(string_agg(a.attrelid::text || ' "' || replace(a.attname, '"', '""') || '" '
                                     || pg_catalog.format_type(a.atttypid, a.atttypmod),
                                   E'\n' ORDER BY a.attrelid, a.attnum), '')
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = ANY ($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname NOT LIKE '\_\_pgt\_%')
