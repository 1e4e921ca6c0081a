-- query: SELECT * FROM customers WHERE tier < (SELECT count(*) FROM orders WHERE cust_id = customers.id)
== notes
correlated scalar subquery LEFT JOINed to a derived table grouped by (cust_id) (position 38)
== rewritten
SELECT customers.id, customers.name, customers.region, customers.tier FROM customers LEFT JOIN (SELECT cust_id AS __pgt_key1, count(*) AS __pgt_value, pg_catalog.count(*) AS __pgt_rows FROM orders GROUP BY cust_id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = customers.id WHERE tier < CASE WHEN __pgt_sq1.__pgt_rows IS NULL THEN (SELECT count(*) FROM orders WHERE false) ELSE __pgt_sq1.__pgt_value END
