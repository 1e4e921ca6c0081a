-- query: SELECT o.cust_id, count(*) AS n, o.cust_id > ALL (SELECT c.tier FROM customers c WHERE c.region = 'north' AND c.id = o.cust_id) AS above FROM orders o GROUP BY o.cust_id
== notes
correlated IN / ANY / ALL LEFT JOINed to a derived table grouped by (c.id) (position 44)
== rewritten
SELECT o.cust_id, count(*) AS n, o.cust_id > ALL(COALESCE(__pgt_sq1.__pgt_items, '{}')) AS above FROM orders o LEFT JOIN (SELECT c.id AS __pgt_key1, pg_catalog.array_agg(c.tier) AS __pgt_items FROM customers c WHERE c.region = 'north' GROUP BY c.id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = o.cust_id GROUP BY o.cust_id, __pgt_sq1.__pgt_items
