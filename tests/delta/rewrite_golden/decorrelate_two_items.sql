-- query: SELECT o.id FROM orders o, customers c WHERE c.id = o.cust_id AND coalesce((SELECT sum(o3.amount) FROM orders o3 WHERE o3.cust_id = c.id AND o3.status = o.status), 0) > 10
== notes
correlated scalar subquery LEFT JOINed to a derived table grouped by (o3.cust_id, o3.status) (position 76)
== rewritten
SELECT o.id FROM orders o CROSS JOIN customers c LEFT JOIN (SELECT o3.cust_id AS __pgt_key1, o3.status AS __pgt_key2, sum(o3.amount) AS __pgt_value FROM orders o3 GROUP BY o3.cust_id, o3.status) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = c.id AND __pgt_sq1.__pgt_key2 = o.status WHERE c.id = o.cust_id AND COALESCE(__pgt_sq1.__pgt_value, 0) > 10
