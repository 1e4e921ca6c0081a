-- query: SELECT o.id, (SELECT max(o2.amount) + o.qty FROM orders o2 WHERE o2.cust_id = o.cust_id) AS x FROM orders o
== notes
== rewritten
SELECT o.id, (SELECT max(o2.amount) + o.qty FROM orders o2 WHERE o2.cust_id = o.cust_id) AS x FROM orders o
