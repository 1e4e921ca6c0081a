-- Q11 important stock identification (:FRACTION is 0.0001 / SF, substituted
-- by whoever loads the query, as qgen substitutes the parameters)
SELECT ps_partkey, sum(ps_supplycost * ps_availqty) AS value
FROM partsupp, supplier, nation
WHERE ps_suppkey = s_suppkey AND s_nationkey = n_nationkey AND n_name = 'GERMANY'
GROUP BY ps_partkey
HAVING sum(ps_supplycost * ps_availqty) > (SELECT sum(ps_supplycost * ps_availqty) * :FRACTION
                                           FROM partsupp, supplier, nation
                                           WHERE ps_suppkey = s_suppkey
                                             AND s_nationkey = n_nationkey
                                             AND n_name = 'GERMANY')
ORDER BY value DESC
