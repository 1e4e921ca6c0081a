-- query: SELECT o.id, (SELECT c.name FROM customers c WHERE c.id = o.cust_id) FROM orders o
== notes
correlated scalar subquery LEFT JOINed to a lookup on its key (c.id) (position 14)
== rewritten
SELECT o.id, __pgt_sq1.__pgt_value AS name FROM orders o LEFT JOIN (SELECT c.id AS __pgt_key1, c.name AS __pgt_value FROM customers c) __pgt_sq1 ON __pgt_sq1.__pgt_key1 = o.cust_id
