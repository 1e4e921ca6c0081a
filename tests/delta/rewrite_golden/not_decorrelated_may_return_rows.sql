-- query: SELECT o.id, (SELECT o2.id FROM orders o2 WHERE o2.cust_id = o.cust_id) AS other FROM orders o
== notes
== rewritten
SELECT o.id, (SELECT o2.id FROM orders o2 WHERE o2.cust_id = o.cust_id) AS other FROM orders o
