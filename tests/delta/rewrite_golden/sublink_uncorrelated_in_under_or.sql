-- query: SELECT e.k, e.v FROM events e WHERE e.v = 'x' OR e.k NOT IN (SELECT id FROM customers WHERE tier = 2)
== notes
uncorrelated IN / ANY / ALL inside an expression: over ARRAY(subquery), a scalar subquery (position 54)
== rewritten
SELECT e.k, e.v FROM events e WHERE e.v = 'x' OR NOT e.k = ANY(ARRAY(SELECT id FROM customers WHERE tier = 2))
