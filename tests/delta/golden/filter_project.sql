-- query: SELECT id, amount * 2 AS doubled FROM orders WHERE status = 'paid'
-- mode: DIFFERENTIAL
== explanation
Project orders.id AS id, orders.amount * 2 AS doubled  [linear]
  Filter orders.status = 'paid'  [linear]
    Scan src.orders key (id)  [delta table]
apply: keyed: one storage row per output row, identified by its key; identity (id)
== storage_ddl
CREATE TABLE st.t AS SELECT i.c1 AS id, i.c2 AS doubled FROM (SELECT i.c1 AS c1, i.c3 * 2 AS c2 FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4, i.c5 AS c5, i.c6 AS c6, i.c7 AS c7 FROM (SELECT t.id AS c1, t.cust_id AS c2, t.amount AS c3, t.status AS c4, t.qty AS c5, t.price AS c6, t.weight AS c7 FROM src.orders t) i WHERE i.c4 = 'paid') i) i WITH NO DATA;
CREATE UNIQUE INDEX ON st.t USING btree (id) NULLS NOT DISTINCT;
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t (id, doubled) SELECT i.c1 AS id, i.c2 AS doubled FROM (SELECT i.c1 AS c1, i.c3 * 2 AS c2 FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4, i.c5 AS c5, i.c6 AS c6, i.c7 AS c7 FROM (SELECT t.id AS c1, t.cust_id AS c2, t.amount AS c3, t.status AS c4, t.qty AS c5, t.price AS c6, t.weight AS c7 FROM src.orders t) i WHERE i.c4 = 'paid') i) i;
== merge_sql
MERGE INTO st.t t USING (WITH __pgt_d0 AS NOT MATERIALIZED (SELECT d.id AS c1, d.cust_id AS c2, d.amount AS c3, d.status AS c4, d.qty AS c5, d.price AS c6, d.weight AS c7, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1001 d), __pgt_d1 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4, i.c5 AS c5, i.c6 AS c6, i.c7 AS c7, i.__pgt_dm AS __pgt_dm FROM __pgt_d0 i WHERE i.c4 = 'paid'), __pgt_d2 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c3 * 2 AS c2, i.__pgt_dm AS __pgt_dm FROM __pgt_d1 i), __pgt_c3 AS (SELECT i.c1 AS c1, i.c2 AS c2, pg_catalog.sum(i.__pgt_dm) AS __pgt_n FROM __pgt_d2 i GROUP BY i.c1, i.c2 HAVING pg_catalog.sum(i.__pgt_dm) <> 0) SELECT DISTINCT ON (c.c1) c.c1 AS id, c.c2 AS doubled, CASE WHEN c.__pgt_n < 0 THEN 'D' ELSE 'U' END AS __pgt_op FROM __pgt_c3 c ORDER BY c.c1, c.__pgt_n DESC) d ON t.id = d.id WHEN MATCHED AND d.__pgt_op = 'D' THEN DELETE WHEN MATCHED AND ROW(t.doubled) IS DISTINCT FROM ROW(d.doubled) THEN UPDATE SET doubled = d.doubled WHEN NOT MATCHED AND d.__pgt_op <> 'D' THEN INSERT (id, doubled) VALUES (d.id, d.doubled);
