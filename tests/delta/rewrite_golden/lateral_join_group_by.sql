-- query: SELECT c.id, s.status, s.n FROM customers c JOIN LATERAL (SELECT o.status, count(*) AS n FROM orders o WHERE o.cust_id = c.id GROUP BY o.status) s ON s.n > 1
== notes
LATERAL subquery s joined as a derived table on its correlation keys (o.cust_id) (position 66)
== rewritten
SELECT c.id, s.status, s.n FROM customers c JOIN (SELECT o.status, count(*) AS n, o.cust_id AS __pgt_key1 FROM orders o GROUP BY o.status, o.cust_id) s ON s.n > 1 AND s.__pgt_key1 = c.id
