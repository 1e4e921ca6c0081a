#!/usr/bin/env bash
# The main job, end to end: installs what is needed, builds, starts a
# throwaway local PostgreSQL 15 when no DSN is given, starts trickled, writes
# some rows and shows them arriving in the change log.
#
#   scripts/run.sh                      # throwaway PostgreSQL in a temp dir
#   scripts/run.sh 'host=... dbname=... user=...'   # your database (wal_level=logical)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dsn="${1:-${TRICKLE_DSN:-}}"

"$root/scripts/install-deps.sh"
echo "== building"
"$root/scripts/build.sh" "$root/build"

work="$(mktemp -d /tmp/trickle-run-XXXXXX)"
pg_pid=""
trickled_pid=""
cleanup() {
  [ -n "$trickled_pid" ] && kill "$trickled_pid" 2>/dev/null && wait "$trickled_pid" 2>/dev/null || true
  if [ -n "$pg_pid" ]; then as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

pgbin=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -z "$dsn" ]; then
  echo "== starting a throwaway PostgreSQL 15 in $work/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$work"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$pgbin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$work/pg/postgresql.conf" <<CONF
wal_level = logical
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
CONF
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w start >/dev/null
  pg_pid=1
  dsn="host=$work port=$port dbname=postgres user=postgres"
fi
psql_() { psql "$dsn" -X -q -v ON_ERROR_STOP=1 "$@"; }

echo "== creating a source table and publishing it"
psql_ <<'SQL'
CREATE TABLE IF NOT EXISTS demo_orders (id int PRIMARY KEY, customer text, amount numeric);
ALTER TABLE demo_orders REPLICA IDENTITY FULL;
SQL

echo "== starting trickled (change log in $work/data)"
"$root/build/service/trickled" --dsn="$dsn" --data-dir="$work/data" --log-level=debug \
  --slot-name=trickle_demo --publication-name=trickle_demo >"$work/trickled.log" 2>&1 &
trickled_pid=$!
for _ in $(seq 1 100); do grep -q "streaming from slot" "$work/trickled.log" && break; sleep 0.1; done
psql_ -c "ALTER PUBLICATION trickle_demo ADD TABLE demo_orders" 2>/dev/null || true

echo "== writing rows"
psql_ <<'SQL'
INSERT INTO demo_orders VALUES (1, 'ada', 10.5), (2, 'grace', 20), (3, 'edsger', 7.25);
BEGIN; UPDATE demo_orders SET amount = amount * 2 WHERE id = 2; DELETE FROM demo_orders WHERE id = 3; COMMIT;
SQL
sleep 1.5
echo "== trickled's log (each stored transaction is one line):"
cat "$work/trickled.log"
echo "== slot position confirmed to PostgreSQL (only what the change log made durable):"
psql_ -c "SELECT slot_name, confirmed_flush_lsn, pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'trickle_demo'"
kill "$trickled_pid"; wait "$trickled_pid" || true; trickled_pid=""
psql_ -c "SELECT pg_drop_replication_slot('trickle_demo')" >/dev/null
echo "== done"
