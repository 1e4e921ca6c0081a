-- $1 = lower-case function name. The worst case over its overloads.
SELECT bool_or(p.provolatile = 'v') AS volatile,
       bool_or(p.provolatile = 's') AS stable,
       bool_or(p.prokind = 'a') AS aggregate,
       bool_or(p.prokind = 'w') AS window,
       bool_or(p.proretset) AS returns_set,
       count(*) AS overloads
FROM pg_catalog.pg_proc p
WHERE p.proname = $1
