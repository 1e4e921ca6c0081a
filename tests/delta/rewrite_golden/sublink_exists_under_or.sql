-- query: SELECT c.id FROM customers c WHERE c.tier = 1 OR EXISTS (SELECT 1 FROM orders o WHERE o.cust_id = c.id AND o.status = 'paid')
== notes
correlated EXISTS LEFT JOINed to a derived table grouped by (o.cust_id) (position 50)
== rewritten
SELECT c.id FROM customers c LEFT JOIN (SELECT o.cust_id AS __pgt_key1, pg_catalog.count(*) AS __pgt_rows FROM orders o WHERE o.status = 'paid' GROUP BY o.cust_id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = c.id WHERE c.tier = 1 OR __pgt_sq1.__pgt_rows IS NOT NULL
