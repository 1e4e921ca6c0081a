-- The service's refresh worker connections ('trickle-worker-N') in this
-- database: how many are working right now (running a statement or inside a
-- refresh transaction) and how many are open. One trickled per database
-- holds the slot, so these are ours.
SELECT count(*) FILTER (WHERE state <> 'idle'), count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE 'trickle-worker-%'
