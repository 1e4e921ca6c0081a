-- query: SELECT o.id FROM orders o WHERE o.amount > (SELECT max(o2.amount) FROM orders o2 WHERE o2.id < o.id)
== notes
== rewritten
SELECT o.id FROM orders o WHERE o.amount > (SELECT max(o2.amount) FROM orders o2 WHERE o2.id < o.id)
