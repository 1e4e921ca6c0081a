-- The refresh boundary: this refresh's row counts (counters now minus the
-- counters before it applied anything) and, when it changed the stream
-- table, a transactional logical message `trickle.refresh` whose content is
-- a JSON object. $1 = quoted qualified table name, $2 = "schema.name",
-- $3 = action, $4 = frontier LSN, $5 = frontier exceptions (text[]),
-- $6..$8 = inserted/updated/deleted before, $9 = truncated.
WITH c AS (
  SELECT pg_stat_get_xact_tuples_inserted($1::regclass) - $6::bigint AS inserted,
         pg_stat_get_xact_tuples_updated($1::regclass) - $7::bigint AS updated,
         pg_stat_get_xact_tuples_deleted($1::regclass) - $8::bigint AS deleted
)
SELECT inserted, updated, deleted,
       CASE WHEN inserted + updated + deleted > 0 OR $9::boolean THEN
         pg_logical_emit_message(true, 'trickle.refresh', json_build_object(
           'stream_table', $2::text,
           'action', $3::text,
           'frontier', json_build_object('lsn', $4::text, 'exceptions', $5::text[]),
           'inserted', inserted, 'updated', updated, 'deleted', deleted,
           'truncated', $9::boolean)::text)::text
       END
FROM c
