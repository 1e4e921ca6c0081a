-- $1 = relation oid. The primary key's columns, else the replica-identity
-- index's, in index order.
WITH idx AS (
  SELECT i.indexrelid, i.indkey
  FROM pg_catalog.pg_index i
  WHERE i.indrelid = $1::oid AND (i.indisprimary OR i.indisreplident) AND i.indisvalid
  ORDER BY i.indisprimary DESC
  LIMIT 1
)
SELECT a.attname
FROM idx, unnest(idx.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid AND a.attnum = k.attnum
ORDER BY k.pos
