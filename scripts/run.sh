#!/usr/bin/env bash
# The main job, end to end: installs what is needed, builds, starts a
# throwaway local PostgreSQL 15 when no DSN is given, starts trickled,
# creates a stream table with the trickle CLI, writes to its source and shows
# the stream table kept equal to its query.
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
  # Past 2^32 transactions, like a long-lived production database.
  as_pg "$pgbin/pg_resetwal" -e 1 "$work/pg" >/dev/null
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

echo "== creating a source table with a few orders"
psql_ <<'SQL'
CREATE TABLE IF NOT EXISTS demo_orders (id int PRIMARY KEY, customer text, amount numeric);
ALTER TABLE demo_orders REPLICA IDENTITY FULL;
TRUNCATE demo_orders;
INSERT INTO demo_orders VALUES (1, 'ada', 10.5), (2, 'grace', 20), (3, 'edsger', 7.25);
SQL

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
grpc_port=$(free_port)
http_port=$(free_port)
export TRICKLE_ADDRESS="127.0.0.1:$grpc_port"
trickle() { "$root/build/service/trickle" "$@"; }

echo "== starting trickled (change log in $work/data, admin RPC on $TRICKLE_ADDRESS, /metrics on 127.0.0.1:$http_port)"
"$root/build/service/trickled" --dsn="$dsn" --data-dir="$work/data" \
  --slot-name=trickle_demo --publication-name=trickle_demo \
  --grpc-address="$TRICKLE_ADDRESS" --http-address="127.0.0.1:$http_port" >"$work/trickled.log" 2>&1 &
trickled_pid=$!
for _ in $(seq 1 300); do trickle health >/dev/null 2>&1 && break; sleep 0.1; done
trickle health || { cat "$work/trickled.log"; exit 1; }

echo
echo "== creating a stream table through the CLI"
query="SELECT customer, count(*) AS orders, sum(amount) AS total FROM demo_orders GROUP BY customer"
trickle drop demo_totals >/dev/null 2>&1 || true  # left over from an interrupted run
echo "\$ trickle create demo_totals \"$query\""
trickle create demo_totals "$query"
psql_ -c "SELECT customer, orders, total FROM demo_totals ORDER BY customer"

echo "== writing to the source: an insert, an update and a delete in one transaction, then more inserts"
psql_ <<'SQL'
BEGIN;
INSERT INTO demo_orders VALUES (4, 'ada', 4.5), (5, 'barbara', 12);
UPDATE demo_orders SET amount = amount * 2 WHERE id = 2;
DELETE FROM demo_orders WHERE id = 3;
COMMIT;
INSERT INTO demo_orders SELECT g, 'user' || (g % 5), g FROM generate_series(100, 199) g;
SQL

echo "== waiting until the stream table equals its query (trickled refreshes it on change)"
same=""
for _ in $(seq 1 100); do
  diff_rows=$(psql_ -At -c "SELECT count(*) FROM ((SELECT customer, orders, total FROM demo_totals EXCEPT ALL $query) UNION ALL ($query EXCEPT ALL SELECT customer, orders, total FROM demo_totals)) d")
  if [ "$diff_rows" = "0" ]; then same=1; break; fi
  sleep 0.1
done
[ -n "$same" ] || { echo "demo_totals does not match its query"; cat "$work/trickled.log"; exit 1; }
echo "demo_totals matches its query:"
psql_ -c "SELECT customer, orders, total FROM demo_totals ORDER BY customer"

echo "== trickle list"
trickle list
echo
echo "== trickle status demo_totals"
trickle status demo_totals --history=3
echo
echo "== trickle explain demo_totals (the operator tree; --analyze adds the plan on the pending delta)"
trickle explain demo_totals | sed -n '1,/^-- delta SQL/p' | sed '$d'
echo "== /metrics (the stream table's series)"
python3 -c "import urllib.request,sys; print(urllib.request.urlopen('http://127.0.0.1:$http_port/metrics').read().decode())" \
  | grep -E '^trickle_(refreshes_total|stream_table_staleness_seconds|capture_transactions_total|slot_lag_bytes)' || true

echo "== trickle drop demo_totals (the demo cleans up after itself)"
trickle drop demo_totals
kill "$trickled_pid"; wait "$trickled_pid" || true; trickled_pid=""
psql_ -c "SELECT pg_drop_replication_slot('trickle_demo')" >/dev/null
echo "== done"
