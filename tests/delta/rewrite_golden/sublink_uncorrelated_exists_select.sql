-- query: SELECT id, EXISTS (SELECT 1 FROM customers WHERE region = 'north') AS any_north FROM orders
== notes
uncorrelated EXISTS inside an expression: count(*) > 0 of the subquery, a scalar subquery (position 12)
== rewritten
SELECT id, (SELECT pg_catalog.count(*) > 0 FROM (SELECT 1 FROM customers WHERE region = 'north') __pgt_exists) AS any_north FROM orders
