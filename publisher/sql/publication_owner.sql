-- Whether a publication exists and its comment (who it belongs to).
-- $1 = publication name.
SELECT coalesce(obj_description(p.oid, 'pg_publication'), '')
FROM pg_publication p
WHERE p.pubname = $1
