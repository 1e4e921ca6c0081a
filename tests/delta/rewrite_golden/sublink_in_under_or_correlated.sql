-- query: SELECT o.id FROM orders o WHERE o.amount > 50 OR o.qty IN (SELECT o2.qty FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.id <> 0)
== notes
correlated IN / ANY / ALL LEFT JOINed to a derived table grouped by (o2.cust_id) (position 56)
== rewritten
SELECT o.id FROM orders o LEFT JOIN (SELECT o2.cust_id AS __pgt_key1, pg_catalog.array_agg(o2.qty) AS __pgt_items FROM orders o2 WHERE o2.id <> 0 GROUP BY o2.cust_id) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = o.cust_id WHERE o.amount > 50 OR o.qty = ANY(COALESCE(__pgt_sq1.__pgt_items, '{}'))
