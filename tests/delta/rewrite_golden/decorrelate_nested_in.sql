-- query: SELECT c.name FROM customers c WHERE c.id IN (SELECT o.cust_id FROM orders o WHERE o.qty > (SELECT 0.5 * sum(o2.amount) FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.status = o.status))
== notes
correlated scalar subquery joined with a derived table grouped by (o2.cust_id, o2.status) (position 92)
== rewritten
SELECT c.name FROM customers c WHERE c.id IN (SELECT o.cust_id FROM orders o, (SELECT o2.cust_id AS __pgt_key1, o2.status AS __pgt_key2, 0.5 * sum(o2.amount) AS __pgt_value FROM orders o2 GROUP BY o2.cust_id, o2.status) __pgt_sq1 WHERE o.qty > __pgt_sq1.__pgt_value AND __pgt_sq1.__pgt_key1 = o.cust_id AND __pgt_sq1.__pgt_key2 = o.status)
