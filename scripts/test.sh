#!/usr/bin/env bash
# The test command: installs what is needed, builds, and runs every test
# (unit, real-PostgreSQL integration, short fuzz run). Exit code 0 = all passed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
build="${TRICKLE_BUILD_DIR:-$root/build}"
"$root/scripts/build.sh" "$build"
jobs="$(nproc 2>/dev/null || echo 2)"
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 900 "$@"
