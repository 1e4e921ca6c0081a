-- query: SELECT k FROM events UNION SELECT tier FROM customers
-- mode: DIFFERENTIAL
== explanation
Distinct  [counting: hidden count per row += the input delta's sum]
  UnionAll  [linear]
    Project events.k AS k  [linear]
      Scan src.events (no key)  [delta table]
    Project customers.tier AS tier, customers.id (carried key)  [linear]
      Scan src.customers key (id)  [delta table]
apply: distinct: hidden count of input rows per output row, present while positive; identity (k) matched through __pgt_row_id (a hash) and then exactly
== storage_ddl
CREATE TABLE st.t WITH (fillfactor=90) AS SELECT i.c1 AS k, pg_catalog.count(*) AS __pgt_count, pg_catalog.hash_record_extended(ROW(i.c1), 0) AS __pgt_row_id FROM (SELECT u.c1 AS c1 FROM (SELECT i.c1 AS c1 FROM (SELECT i.c1 AS c1 FROM (SELECT t.k AS c1, t.v AS c2 FROM src.events t) i) i UNION ALL SELECT i.c1 AS c1 FROM (SELECT i.c4 AS c1, i.c1 AS c2 FROM (SELECT t.id AS c1, t.name AS c2, t.region AS c3, t.tier AS c4 FROM src.customers t) i) i) u) i GROUP BY i.c1 WITH NO DATA;
CREATE UNIQUE INDEX ON st.t USING btree (k) NULLS NOT DISTINCT;
CREATE INDEX ON st.t USING btree (__pgt_row_id);
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t (k, __pgt_count, __pgt_row_id) SELECT i.c1 AS k, pg_catalog.count(*) AS __pgt_count, pg_catalog.hash_record_extended(ROW(i.c1), 0) AS __pgt_row_id FROM (SELECT u.c1 AS c1 FROM (SELECT i.c1 AS c1 FROM (SELECT i.c1 AS c1 FROM (SELECT t.k AS c1, t.v AS c2 FROM src.events t) i) i UNION ALL SELECT i.c1 AS c1 FROM (SELECT i.c4 AS c1, i.c1 AS c2 FROM (SELECT t.id AS c1, t.name AS c2, t.region AS c3, t.tier AS c4 FROM src.customers t) i) i) u) i GROUP BY i.c1;
== merge_sql
MERGE INTO st.t t USING (WITH __pgt_d0 AS NOT MATERIALIZED (SELECT d.k AS c1, d.v AS c2, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1003 d), __pgt_d1 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.__pgt_dm AS __pgt_dm FROM __pgt_d0 i), __pgt_d2 AS NOT MATERIALIZED (SELECT d.id AS c1, d.name AS c2, d.region AS c3, d.tier AS c4, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1002 d), __pgt_d3 AS NOT MATERIALIZED (SELECT i.c4 AS c1, i.c1 AS c2, i.__pgt_dm AS __pgt_dm FROM __pgt_d2 i), __pgt_d4 AS (SELECT u.c1 AS c1, u.__pgt_dm AS __pgt_dm FROM (SELECT i.c1 AS c1, i.__pgt_dm AS __pgt_dm FROM __pgt_d1 i UNION ALL SELECT i.c1 AS c1, i.__pgt_dm AS __pgt_dm FROM __pgt_d3 i) u), __pgt_a5 AS (SELECT i.c1 AS k, pg_catalog.sum(i.__pgt_dm) AS __pgt_d, pg_catalog.hash_record_extended(ROW(i.c1), 0) AS __pgt_row_id FROM __pgt_d4 i GROUP BY i.c1) SELECT d.k AS k, CAST(COALESCE(t.__pgt_count, 0) + d.__pgt_d AS bigint) AS __pgt_count, d.__pgt_row_id AS __pgt_row_id, CASE WHEN (COALESCE(t.__pgt_count, 0) + d.__pgt_d) <= 0 THEN 'D' ELSE 'U' END AS __pgt_op FROM __pgt_a5 d LEFT JOIN st.t t ON t.__pgt_row_id = d.__pgt_row_id AND t.k IS NOT DISTINCT FROM d.k) d ON t.__pgt_row_id = d.__pgt_row_id AND t.k IS NOT DISTINCT FROM d.k WHEN MATCHED AND d.__pgt_op = 'D' THEN DELETE WHEN MATCHED AND ROW(t.__pgt_count) IS DISTINCT FROM ROW(d.__pgt_count) THEN UPDATE SET __pgt_count = d.__pgt_count WHEN NOT MATCHED AND d.__pgt_op <> 'D' THEN INSERT (k, __pgt_count, __pgt_row_id) VALUES (d.k, d.__pgt_count, d.__pgt_row_id);
