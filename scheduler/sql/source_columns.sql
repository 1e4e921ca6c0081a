-- $1: source relation OIDs ('{oid,...}'). Their live columns, in attnum
-- order, as the refresh's snapshot sees them: checked against the plan's
-- (a type changed by ALTER TABLE rewrites rows without logging a change).
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY ($1::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
