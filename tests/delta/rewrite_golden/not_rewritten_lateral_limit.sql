-- query: SELECT c.id, s.id AS oid FROM customers c, LATERAL (SELECT o.id FROM orders o WHERE o.cust_id = c.id ORDER BY o.amount DESC LIMIT 2) s
== notes
== rewritten
SELECT c.id, s.id AS oid FROM customers c, LATERAL (SELECT o.id FROM orders o WHERE o.cust_id = c.id ORDER BY o.amount DESC LIMIT 2) s
