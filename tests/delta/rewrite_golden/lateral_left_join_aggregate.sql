-- query: SELECT c.id, s.n, s.total FROM customers c LEFT JOIN LATERAL (SELECT count(*) AS n, sum(o.amount) AS total FROM orders o WHERE o.cust_id = c.id) s ON true
== notes
LATERAL subquery s (one row per outer row) LEFT JOINed as a derived table grouped by (o.cust_id) (position 70)
== rewritten
SELECT c.id, CASE WHEN s.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders o WHERE false) ELSE s.n END AS n, s.total FROM customers c LEFT JOIN (SELECT count(*) AS n, sum(o.amount) AS total, o.cust_id AS __pgt_key1, pg_catalog.count(*) AS __pgt_rows FROM orders o GROUP BY o.cust_id) s ON s.__pgt_key1 = c.id
