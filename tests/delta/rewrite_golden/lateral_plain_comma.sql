-- query: SELECT o.id, x.name FROM orders o, LATERAL (SELECT * FROM customers c WHERE c.id = o.cust_id) x
== notes
LATERAL subquery x joined as a derived table on its correlation keys (c.id) (position 52)
== rewritten
SELECT o.id, x.name FROM orders o, (SELECT *, c.id AS __pgt_key1 FROM customers c) x WHERE x.__pgt_key1 = o.cust_id
