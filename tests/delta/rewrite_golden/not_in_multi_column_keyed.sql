-- query: SELECT o.id FROM orders o WHERE (o.id, o.status) NOT IN (SELECT c.id, c.name FROM customers c)
== notes
multi-column NOT IN as NOT EXISTS with SQL's NULL rules (2 of 2 columns never NULL on both sides, compared by equality) (position 50)
== rewritten
SELECT o.id FROM orders o WHERE NOT EXISTS (SELECT 1 FROM (SELECT c.id, c.name FROM customers c) __pgt_not_in(__pgt_c1, __pgt_c2) WHERE __pgt_not_in.__pgt_c1 = o.id AND __pgt_not_in.__pgt_c2 = o.status)
