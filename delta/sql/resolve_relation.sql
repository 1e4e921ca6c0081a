-- $1: schema ('' = resolve through search_path), $2: relation name.
-- One row: oid, schema, name, relkind; no row when the relation does not exist.
SELECT c.oid, n.nspname, c.relname, c.relkind
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass(
  CASE WHEN $1 = '' THEN pg_catalog.quote_ident($2)
       ELSE pg_catalog.quote_ident($1) || '.' || pg_catalog.quote_ident($2) END)
