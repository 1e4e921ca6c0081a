-- The schemas unqualified names resolve in, in order.
SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))
