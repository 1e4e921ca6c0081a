-- query: SELECT * FROM customers c, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.cust_id = c.id AND o.status = 'paid') s WHERE s.n < 2
== notes
LATERAL subquery s (one row per outer row) LEFT JOINed as a derived table grouped by (o.cust_id) (position 44)
== rewritten
SELECT c.id, c.name, c.region, c.tier, CASE WHEN s.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders o WHERE false) ELSE s.n END AS n FROM customers c LEFT JOIN (SELECT count(*) AS n, o.cust_id AS __pgt_key1, pg_catalog.count(*) AS __pgt_rows FROM orders o WHERE o.status = 'paid' GROUP BY o.cust_id) s ON s.__pgt_key1 = c.id WHERE CASE WHEN s.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders o WHERE false) ELSE s.n END < 2
