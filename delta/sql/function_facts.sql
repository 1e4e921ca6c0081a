-- $1: function name (as the parser gives it: folded to lower case unless
-- quoted). Volatility is the worst over every overload in every schema
-- ('i' < 's' < 'v'); aggregate / window / set-returning over the overloads
-- the search path (and pg_catalog) can reach; mixed_kinds when some overload
-- anywhere is of another kind (an aggregate and a plain function of one
-- name), which the engine cannot tell apart without resolving the call.
SELECT pg_catalog.max(p.provolatile::pg_catalog.text),
       coalesce(pg_catalog.bool_or(p.prokind = 'a') FILTER (WHERE v.visible), false),
       coalesce(pg_catalog.bool_or(p.prokind = 'w') FILTER (WHERE v.visible), false),
       coalesce(pg_catalog.bool_or(p.proretset) FILTER (WHERE v.visible), false),
       pg_catalog.count(DISTINCT p.prokind) > 1 OR pg_catalog.count(DISTINCT p.proretset) > 1
FROM pg_catalog.pg_proc p,
     LATERAL (SELECT p.pronamespace IN (SELECT n.oid FROM pg_catalog.pg_namespace n
                                        WHERE n.nspname = ANY (pg_catalog.current_schemas(true)))
             AS visible) v
WHERE p.proname = $1
