-- query: SELECT "select", "a""b" AS "From", "Group" FROM "Odd Schema"."we""ird" WHERE "MixedCase" IS NOT NULL
-- mode: DIFFERENTIAL
== explanation
Project we"ird.select AS select, we"ird.a"b AS From, we"ird.Group AS Group  [linear]
  Filter we"ird.MixedCase IS NOT NULL  [linear]
    Scan Odd Schema.we"ird key (select)  [delta table]
apply: keyed: one storage row per output row, identified by its key; identity (select)
== storage_ddl
CREATE TABLE st.t AS SELECT i.c1 AS "select", i.c2 AS "From", i.c3 AS "Group" FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3 FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4 FROM (SELECT t."select" AS c1, t."a""b" AS c2, t."Group" AS c3, t."MixedCase" AS c4 FROM "Odd Schema"."we""ird" t) i WHERE i.c4 IS NOT NULL) i) i WITH NO DATA;
CREATE UNIQUE INDEX ON st.t USING btree ("select") NULLS NOT DISTINCT;
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t ("select", "From", "Group") SELECT i.c1 AS "select", i.c2 AS "From", i.c3 AS "Group" FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3 FROM (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4 FROM (SELECT t."select" AS c1, t."a""b" AS c2, t."Group" AS c3, t."MixedCase" AS c4 FROM "Odd Schema"."we""ird" t) i WHERE i.c4 IS NOT NULL) i) i;
== merge_sql
MERGE INTO st.t t USING (WITH __pgt_d0 AS NOT MATERIALIZED (SELECT d."select" AS c1, d."a""b" AS c2, d."Group" AS c3, d."MixedCase" AS c4, CASE WHEN d.__op = 'I' THEN 1 ELSE -1 END::bigint AS __pgt_dm FROM __trickle_delta_1004 d), __pgt_d1 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.c4 AS c4, i.__pgt_dm AS __pgt_dm FROM __pgt_d0 i WHERE i.c4 IS NOT NULL), __pgt_d2 AS NOT MATERIALIZED (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, i.__pgt_dm AS __pgt_dm FROM __pgt_d1 i), __pgt_c3 AS (SELECT i.c1 AS c1, i.c2 AS c2, i.c3 AS c3, pg_catalog.sum(i.__pgt_dm) AS __pgt_n FROM __pgt_d2 i GROUP BY i.c1, i.c2, i.c3 HAVING pg_catalog.sum(i.__pgt_dm) <> 0) SELECT DISTINCT ON (c.c1) c.c1 AS "select", c.c2 AS "From", c.c3 AS "Group", CASE WHEN c.__pgt_n < 0 THEN 'D' ELSE 'U' END AS __pgt_op FROM __pgt_c3 c ORDER BY c.c1, c.__pgt_n DESC) d ON t."select" = d."select" WHEN MATCHED AND d.__pgt_op = 'D' THEN DELETE WHEN MATCHED AND ROW(t."From", t."Group") IS DISTINCT FROM ROW(d."From", d."Group") THEN UPDATE SET "From" = d."From", "Group" = d."Group" WHEN NOT MATCHED AND d.__pgt_op <> 'D' THEN INSERT ("select", "From", "Group") VALUES (d."select", d."From", d."Group");
