-- query: SELECT o.id, s.m FROM orders o, LATERAL (SELECT max(amount) AS m FROM orders) s
== notes
uncorrelated LATERAL subquery s: a plain subquery (position 49)
== rewritten
SELECT o.id, s.m FROM orders o, (SELECT max(amount) AS m FROM orders) s
