-- query: SELECT o.id FROM orders o WHERE o.amount > (SELECT avg(o2.amount) FROM orders o2 WHERE o2.cust_id = o.cust_id AND o2.status <> 'void')
== notes
correlated scalar subquery joined with a derived table grouped by (o2.cust_id) (position 44)
== rewritten
SELECT o.id FROM orders o, (SELECT o2.cust_id AS __pgt_key1, avg(o2.amount) AS __pgt_value FROM orders o2 WHERE o2.status <> 'void' GROUP BY o2.cust_id) __pgt_sq1 WHERE o.amount > __pgt_sq1.__pgt_value AND __pgt_sq1.__pgt_key1 = o.cust_id
