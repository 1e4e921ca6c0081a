-- $1: lower-case function name. Worst case over its overloads visible
-- through the search path (and pg_catalog): volatility ('i' < 's' < 'v'),
-- aggregate, window, set-returning. No row's fields are NULL when unknown.
SELECT pg_catalog.max(p.provolatile::pg_catalog.text),
       pg_catalog.bool_or(p.prokind = 'a'),
       pg_catalog.bool_or(p.prokind = 'w'),
       pg_catalog.bool_or(p.proretset)
FROM pg_catalog.pg_proc p
WHERE p.proname = $1
  AND p.pronamespace IN (SELECT n.oid FROM pg_catalog.pg_namespace n
                         WHERE n.nspname = ANY (pg_catalog.current_schemas(true)))
