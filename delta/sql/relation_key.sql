-- $1: relation oid. The columns of its primary key, else of its replica
-- identity index, in index order.
WITH idx AS (
  SELECT i.indkey
  FROM pg_catalog.pg_index i
  WHERE i.indrelid = $1::pg_catalog.oid AND (i.indisprimary OR i.indisreplident)
  ORDER BY i.indisprimary DESC
  LIMIT 1
)
SELECT a.attname
FROM idx, LATERAL pg_catalog.unnest(idx.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::pg_catalog.oid AND a.attnum = k.attnum
ORDER BY k.ord
