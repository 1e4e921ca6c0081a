#!/usr/bin/env bash
# The slow deployment tests, outside CI's ctest run: builds the container
# image (deploy/build-image.sh: a full Release build inside the image's build
# stage), then runs the podman smoke test (deploy/smoke-test.sh) and the
# chart's workload under `podman kube play` (tests/deploy/kube-play-test.sh).
# Prints how long each step took. Needs root (or sudo) for apt-get and podman.
#
#   deploy/test-image.sh            build (layers cached) and test
#   deploy/test-image.sh --no-build test the image already built
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
. "$root/deploy/podman-env.sh"
image="$TRICKLE_DEFAULT_IMAGE"
timings=()
step() {
  local name="$1"; shift
  local t0; t0=$(date +%s)
  echo "=== $name"
  "$@"
  timings+=("$name: $(( $(date +%s) - t0 )) s")
}
[ "${1:-}" = "--no-build" ] || step "image build" "$root/deploy/build-image.sh" "$image"
step "podman smoke test" "$root/deploy/smoke-test.sh" "$image"
step "chart under podman kube play" "$root/tests/deploy/kube-play-test.sh" "$image"
echo "=== all passed"
printf '  %s\n' "${timings[@]}"
