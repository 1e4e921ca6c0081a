-- query: SELECT e.k, e.v FROM events e WHERE (e.k, e.v) NOT IN (SELECT tier, region FROM customers WHERE tier IS NOT NULL OR region = 'north')
== notes
multi-column NOT IN as NOT EXISTS with SQL's NULL rules (0 of 2 columns never NULL on both sides, compared by equality) (position 48)
== rewritten
SELECT e.k, e.v FROM events e WHERE NOT EXISTS (SELECT 1 FROM (SELECT tier, region FROM customers WHERE tier IS NOT NULL OR region = 'north') __pgt_not_in(__pgt_c1, __pgt_c2) WHERE (__pgt_not_in.__pgt_c1 = e.k OR __pgt_not_in.__pgt_c1 IS NULL OR e.k IS NULL) AND (__pgt_not_in.__pgt_c2 = e.v OR __pgt_not_in.__pgt_c2 IS NULL OR e.v IS NULL))
