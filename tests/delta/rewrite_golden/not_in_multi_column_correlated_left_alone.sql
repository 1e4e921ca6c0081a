-- query: SELECT o.id FROM orders o WHERE (o.id, o.status) NOT IN (SELECT c.id, c.name FROM customers c WHERE c.tier = o.qty)
== notes
== rewritten
SELECT o.id FROM orders o WHERE NOT (o.id, o.status) IN (SELECT c.id, c.name FROM customers c WHERE c.tier = o.qty)
