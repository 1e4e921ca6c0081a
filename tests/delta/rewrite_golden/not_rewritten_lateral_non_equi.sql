-- query: SELECT c.id, s.n FROM customers c, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.cust_id < c.id) s
== notes
== rewritten
SELECT c.id, s.n FROM customers c, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.cust_id < c.id) s
