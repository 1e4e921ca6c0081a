-- query: SELECT status, min(amount) AS lo, max(amount) AS hi FROM orders GROUP BY status
-- mode: DIFFERENTIAL
== explanation
Project orders.status AS status, min(orders.amount) AS lo, max(orders.amount) AS hi  [linear]
  Aggregate GROUP BY orders.status: min(orders.amount), max(orders.amount)  [group recompute: the touched groups are aggregated again from the live tables]
    Scan src.orders key (id)  [delta table]
apply: group recompute: touched groups recomputed from the live tables, replacing their rows; identity (status)
== storage_ddl
CREATE TABLE st.t AS SELECT i.c1 AS status, i.c2 AS lo, i.c3 AS hi FROM (SELECT i.c4 AS c1, min(i.c3) AS c2, max(i.c3) AS c3 FROM (SELECT t.id AS c1, t.cust_id AS c2, t.amount AS c3, t.status AS c4, t.qty AS c5, t.price AS c6, t.weight AS c7 FROM src.orders t) i GROUP BY i.c4) i WITH NO DATA;
CREATE UNIQUE INDEX ON st.t USING btree (status) NULLS NOT DISTINCT;
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t (status, lo, hi) SELECT i.c1 AS status, i.c2 AS lo, i.c3 AS hi FROM (SELECT i.c4 AS c1, min(i.c3) AS c2, max(i.c3) AS c3 FROM (SELECT t.id AS c1, t.cust_id AS c2, t.amount AS c3, t.status AS c4, t.qty AS c5, t.price AS c6, t.weight AS c7 FROM src.orders t) i GROUP BY i.c4) i;
== merge_sql
MERGE INTO st.t t USING (WITH __pgt_d0 AS NOT MATERIALIZED (SELECT d.id AS c1, d.cust_id AS c2, d.amount AS c3, d.status AS c4, d.qty AS c5, d.price AS c6, d.weight AS c7, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1001 d), __pgt_k1 AS (SELECT DISTINCT i.c4 AS k1 FROM __pgt_d0 i), __pgt_r2 AS (SELECT i.c1 AS status, i.c2 AS lo, i.c3 AS hi, i.c1 AS __pgt_key1, pg_catalog.hash_record_extended(ROW(i.c1), 0) AS __pgt_h FROM (SELECT i.c4 AS c1, min(i.c3) AS c2, max(i.c3) AS c3 FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4, i.c5 AS c5, i.c6 AS c6, i.c7 AS c7 FROM (SELECT t.id AS c1, t.cust_id AS c2, t.amount AS c3, t.status AS c4, t.qty AS c5, t.price AS c6, t.weight AS c7 FROM src.orders t) i WHERE i.c4 IN (SELECT k.k1 FROM __pgt_k1 k)) i GROUP BY i.c4) i) SELECT k.k1 AS status, n.lo AS lo, n.hi AS hi, CASE WHEN n.__pgt_h IS NULL THEN 'D' ELSE 'U' END AS __pgt_op FROM __pgt_k1 k LEFT JOIN __pgt_r2 n ON n.__pgt_h = pg_catalog.hash_record_extended(ROW(k.k1), 0) AND n.__pgt_key1 IS NOT DISTINCT FROM k.k1) d ON t.status = d.status WHEN MATCHED AND d.__pgt_op = 'D' THEN DELETE WHEN MATCHED AND ROW(t.lo, t.hi) IS DISTINCT FROM ROW(d.lo, d.hi) THEN UPDATE SET lo = d.lo, hi = d.hi WHEN NOT MATCHED AND d.__pgt_op <> 'D' THEN INSERT (status, lo, hi) VALUES (d.status, d.lo, d.hi);
