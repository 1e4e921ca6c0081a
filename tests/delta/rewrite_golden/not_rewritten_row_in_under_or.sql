-- query: SELECT e.k FROM events e WHERE e.k = 1 OR (e.k, e.v) IN (SELECT id, name FROM customers)
== notes
== rewritten
SELECT e.k FROM events e WHERE e.k = 1 OR (e.k, e.v) IN (SELECT id, name FROM customers)
