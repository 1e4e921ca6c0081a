# Sourced by the podman tests (deploy/smoke-test.sh,
# tests/deploy/kube-play-test.sh), after deploy/podman-env.sh: the image under
# test (the script's first argument, else TRICKLE_DEFAULT_IMAGE) and
# pass/fail counting. `finish` prints the tally and exits 0 only when nothing
# failed.
image="${1:-$TRICKLE_DEFAULT_IMAGE}"
podman image exists "$image" || { echo "no image $image: run deploy/build-image.sh first" >&2; exit 1; }
passed=0
failed=0
ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
expect() { local what="$1"; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }
