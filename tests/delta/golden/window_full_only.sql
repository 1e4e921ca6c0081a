-- query: SELECT id, rank() OVER (PARTITION BY status ORDER BY amount) AS r FROM orders
-- mode: AUTO
== explanation
full refresh only: window function rank() at position 12
== storage_ddl
CREATE TABLE st.t AS SELECT id, rank() OVER (PARTITION BY status ORDER BY amount) AS r FROM orders WITH NO DATA;
== full_refresh_sql
TRUNCATE st.t;
INSERT INTO st.t SELECT id, rank() OVER (PARTITION BY status ORDER BY amount) AS r FROM orders;
