-- query: SELECT o.cust_id, sum(o.amount) AS s FROM orders o GROUP BY o.cust_id HAVING sum(o.amount) > (SELECT count(*) FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.status = 'paid')
== notes
correlated scalar subquery LEFT JOINed to a derived table grouped by (o2.cust_id) (position 94)
== rewritten
SELECT o.cust_id, sum(o.amount) AS s FROM orders o LEFT JOIN (SELECT o2.cust_id AS __pgt_key1, count(*) AS __pgt_value, pg_catalog.count(*) AS __pgt_rows FROM orders o2 WHERE o2.status = 'paid' GROUP BY o2.cust_id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = o.cust_id GROUP BY o.cust_id, __pgt_sq1.__pgt_rows, __pgt_sq1.__pgt_value HAVING sum(o.amount) > CASE WHEN __pgt_sq1.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders o2 WHERE false) ELSE __pgt_sq1.__pgt_value END
