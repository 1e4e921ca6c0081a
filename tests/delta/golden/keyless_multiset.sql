-- query: SELECT k, v FROM events WHERE k > 1
-- mode: DIFFERENTIAL
== explanation
Project events.k AS k, events.v AS v  [linear]
  Filter events.k > 1  [linear]
    Scan src.events (no key)  [delta table]
apply: multiset: rows identified by their values and an ordinal among equal rows; identity (k, v, __pgt_dup) matched through __pgt_row_id (a hash) and then exactly
== storage_ddl
CREATE TABLE st.t AS SELECT i.c1 AS k, i.c2 AS v, pg_catalog.hash_record_extended(ROW(i.c1, i.c2), 0) AS __pgt_row_id, pg_catalog.row_number() OVER (PARTITION BY i.c1, i.c2) AS __pgt_dup FROM (SELECT i.c1 AS c1, i.c2 AS c2 FROM (SELECT i.c1 AS c1, i.c2 AS c2 FROM (SELECT t.k AS c1, t.v AS c2 FROM src.events t) i WHERE i.c1 > 1) i) i WITH NO DATA;
CREATE UNIQUE INDEX ON st.t USING btree (k, v, __pgt_dup) NULLS NOT DISTINCT;
CREATE INDEX ON st.t USING btree (__pgt_row_id);
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t (k, v, __pgt_row_id, __pgt_dup) SELECT i.c1 AS k, i.c2 AS v, pg_catalog.hash_record_extended(ROW(i.c1, i.c2), 0) AS __pgt_row_id, pg_catalog.row_number() OVER (PARTITION BY i.c1, i.c2) AS __pgt_dup FROM (SELECT i.c1 AS c1, i.c2 AS c2 FROM (SELECT i.c1 AS c1, i.c2 AS c2 FROM (SELECT t.k AS c1, t.v AS c2 FROM src.events t) i WHERE i.c1 > 1) i) i;
== merge_sql
MERGE INTO st.t t USING (WITH __pgt_d0 AS NOT MATERIALIZED (SELECT d.k AS c1, d.v AS c2, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1003 d), __pgt_d1 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c2 AS c2, i.__pgt_dm AS __pgt_dm FROM __pgt_d0 i WHERE i.c1 > 1), __pgt_d2 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c2 AS c2, i.__pgt_dm AS __pgt_dm FROM __pgt_d1 i), __pgt_c3 AS (SELECT i.c1 AS c1, i.c2 AS c2, pg_catalog.sum(i.__pgt_dm) AS __pgt_n FROM __pgt_d2 i GROUP BY i.c1, i.c2 HAVING pg_catalog.sum(i.__pgt_dm) <> 0), __pgt_o4 AS (SELECT c.c1 AS c1, c.c2 AS c2, c.__pgt_n AS __pgt_n, pg_catalog.hash_record_extended(ROW(c.c1, c.c2), 0) AS __pgt_h, (SELECT pg_catalog.count(*) FROM st.t t WHERE t.__pgt_row_id = pg_catalog.hash_record_extended(ROW(c.c1, c.c2), 0) AND t.k IS NOT DISTINCT FROM c.c1 AND t.v IS NOT DISTINCT FROM c.c2) AS __pgt_old FROM __pgt_c3 c) SELECT o.c1 AS k, o.c2 AS v, o.__pgt_h AS __pgt_row_id, pg_catalog.generate_series(CASE WHEN o.__pgt_n > 0 THEN o.__pgt_old + 1 ELSE (o.__pgt_old + o.__pgt_n) + 1 END, CASE WHEN o.__pgt_n > 0 THEN o.__pgt_old + o.__pgt_n ELSE o.__pgt_old END) AS __pgt_dup, CASE WHEN o.__pgt_n < 0 THEN 'D' ELSE 'U' END AS __pgt_op FROM __pgt_o4 o) d ON t.__pgt_row_id = d.__pgt_row_id AND t.k IS NOT DISTINCT FROM d.k AND t.v IS NOT DISTINCT FROM d.v AND t.__pgt_dup IS NOT DISTINCT FROM d.__pgt_dup WHEN MATCHED AND d.__pgt_op = 'D' THEN DELETE WHEN NOT MATCHED AND d.__pgt_op <> 'D' THEN INSERT (k, v, __pgt_row_id, __pgt_dup) VALUES (d.k, d.v, d.__pgt_row_id, d.__pgt_dup);
