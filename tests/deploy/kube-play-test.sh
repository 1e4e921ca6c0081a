#!/usr/bin/env bash
# Runs the chart's rendered workload with `podman kube play` against the
# locally built image and a throwaway PostgreSQL 15 on loopback, and checks
# that what the chart asks for took effect in the running container:
# non-root uid/gid, read-only root filesystem, no capabilities, no new
# privileges, the memory limit, the settings from the ConfigMap (slot name,
# refresh workers), the token from the Secret; then creates a stream table
# through the CLI in the pod and stops the pod (exit code 0).
# Usage: tests/deploy/kube-play-test.sh [IMAGE]  (default localhost/trickle:<version>,
# built by deploy/build-image.sh). Exit 0 = passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$root/deploy/podman-env.sh"
. "$root/deploy/pg-throwaway.sh"
. "$root/deploy/checks.sh"

work="$(mktemp -d /tmp/trickle-kube-play-XXXXXX)"
tools="${TRICKLE_CHART_TOOLS:-$work/tools}"
release="kp$$"
cleanup() {
  [ -f "$work/play.yaml" ] && podman kube down "$work/play.yaml" >/dev/null 2>&1 || true
  podman volume rm -f "data-$release-trickle-0" >/dev/null 2>&1 || true
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

"$here/setup-chart-tools.sh" "$tools" >/dev/null
pg_start "$work"
psql_app <<'SQL'
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric NOT NULL);
ALTER TABLE orders REPLICA IDENTITY FULL;
INSERT INTO orders SELECT g, 'c' || (g % 5), g FROM generate_series(1, 100) g;
SQL

grpc_port=$(free_port)
http_port=$(free_port)
token="kp-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
# The pod shares the host's network here: loopback addresses (extraEnv
# overrides the ConfigMap's 0.0.0.0, as env overrides envFrom in Kubernetes).
cat >"$work/values.yaml" <<VALUES
image:
  repository: ${image%:*}
  tag: "${image##*:}"
  pullPolicy: Never
database:
  dsn: "$PG_DSN"
auth:
  token: "$token"
config:
  slotName: trickle_kube
  publicationName: trickle_kube
  maxParallelWorkers: 3
ports:
  grpc: $grpc_port
  http: $http_port
extraEnv:
  - name: TRICKLE_GRPC_ADDRESS
    value: "127.0.0.1:$grpc_port"
  - name: TRICKLE_HTTP_ADDRESS
    value: "127.0.0.1:$http_port"
  - name: TRICKLE_ADDRESS
    value: "127.0.0.1:$grpc_port"
resources:
  requests:
    cpu: 100m
    memory: 128Mi
  limits:
    memory: 512Mi
persistence:
  size: 1Gi
VALUES
"$tools/chartrender" -chart "$root/charts/trickle" -name "$release" -f "$work/values.yaml" >"$work/rendered.yaml"
python3 "$here/kube_play.py" "$work/rendered.yaml" >"$work/play.yaml"
pod="$release-trickle-0"
ctr="$pod-trickled"

echo "== podman kube play (pod $pod)"
# podman turns the liveness probe into a healthcheck timer, which needs
# systemd; without it, it logs errors and goes on (the kubelet probes in
# Kubernetes, not podman): those lines are filtered out.
quiet_systemd() { { "$@" 2>&1 >/dev/null; } | { grep -v 'systemd connection' || true; }; }
quiet_systemd podman kube play "$work/play.yaml"
if wait_http_ok "$http_port" /readyz 120; then ok "/readyz turns 200"; else
  bad "/readyz turns 200"; podman logs "$ctr" 2>&1 | tail -30; finish; fi

pid=$(podman inspect -f '{{.State.Pid}}' "$ctr")
status="$(cat "/proc/$pid/status")"
field() { awk -v f="$1:" '$1 == f {print $2}' <<<"$status"; }
expect "runs as uid 10001 (runAsUser; got $(field Uid))" test "$(field Uid)" = 10001
expect "runs as gid 10001 (runAsGroup; got $(field Gid))" test "$(field Gid)" = 10001
expect "no effective or bounding capabilities (drop ALL)" \
  test "$(field CapEff)" = 0000000000000000 -a "$(field CapBnd)" = 0000000000000000
expect "no new privileges (allowPrivilegeEscalation: false)" test "$(field NoNewPrivs)" = 1
expect "seccomp filter on (RuntimeDefault)" test "$(field Seccomp)" = 2
expect "read-only root filesystem" test "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" = true
expect "the root filesystem refuses writes" sh -c "! podman exec '$ctr' sh -c 'echo x > /var/lib/trickle/probe' 2>/dev/null"
expect "memory limit 512Mi" test "$(podman inspect -f '{{.HostConfig.Memory}}' "$ctr")" = $((512 * 1024 * 1024))
expect "the change log is on the claim's volume" \
  sh -c "podman volume inspect 'data-$pod' >/dev/null && podman exec '$ctr' ls /var/lib/trickle/data | grep -q CURRENT"
metrics="$(http_get "$http_port" /metrics)"
expect "ConfigMap: maxParallelWorkers 3 took effect" grep -qx 'trickle_refresh_workers 3' <<<"$metrics"
active=$(psql_admin -At -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'trickle_kube'")
expect "ConfigMap: slot trickle_kube created and active" test "$active" = t
pub=$(psql_app -At -c "SELECT count(*) FROM pg_publication WHERE pubname = 'trickle_kube'")
expect "ConfigMap: publication trickle_kube" test "$pub" = 1

echo "== the trickle CLI in the pod (token from the Secret in its environment)"
query="SELECT customer, sum(amount) AS total FROM orders GROUP BY customer"
set +e
podman exec "$ctr" env -u TRICKLE_AUTH_TOKEN trickle list >/dev/null 2>&1
code=$?
set -e
expect "without the token the admin RPC refuses (exit 7, got $code)" test "$code" = 7
podman exec "$ctr" trickle create order_totals "$query"
psql_app -c "INSERT INTO orders VALUES (500, 'late', 99)" -c "DELETE FROM orders WHERE id < 10"
expect "stream table created and maintained" wait_equal order_totals "$query"

echo "== stopping the pod (SIGTERM)"
quiet_systemd podman pod stop -t 60 "$pod"
code=$(podman inspect -f '{{.State.ExitCode}}' "$ctr")
expect "trickled exited 0 (got $code)" test "$code" = 0
finish
