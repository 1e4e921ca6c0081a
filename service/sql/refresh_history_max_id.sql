-- Where the refresh counters start: the newest history row at startup.
SELECT coalesce(max(id), 0) FROM pgtrickle.refresh_history
