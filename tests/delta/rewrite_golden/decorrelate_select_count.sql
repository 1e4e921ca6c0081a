-- query: SELECT c.id, (SELECT count(*) FROM orders o WHERE o.cust_id = c.id) AS n FROM customers c
== notes
correlated scalar subquery LEFT JOINed to a derived table grouped by (o.cust_id) (position 14)
== rewritten
SELECT c.id, CASE WHEN __pgt_sq1.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders o WHERE false) ELSE __pgt_sq1.__pgt_value END AS n FROM customers c LEFT JOIN (SELECT o.cust_id AS __pgt_key1, count(*) AS __pgt_value, pg_catalog.count(*) AS __pgt_rows FROM orders o GROUP BY o.cust_id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = c.id
