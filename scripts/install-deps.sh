#!/usr/bin/env bash
# Installs every Debian package Trickle needs to build, test and benchmark.
# Idempotent; safe to run on a fresh Debian 12 (bookworm) machine as root or with sudo.
#   scripts/install-deps.sh           everything (build, tests, benchmarks, chart tests)
#   scripts/install-deps.sh --build   only what building trickled and trickle needs
#                                     (the container image's build stage, deploy/Dockerfile)
set -euo pipefail

build_packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config
  # libraries
  libpq-dev libpg-query-dev librocksdb-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libabsl-dev libspdlog-dev libfmt-dev libboost-dev libboost-system-dev
)
packages=(
  "${build_packages[@]}"
  clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # PostgreSQL 15 server for the test harness, pgbench, pg_recvlogical
  postgresql-15 postgresql-client-15 postgresql-contrib
  # tests of monitoring rules and plots of benchmark results
  prometheus gnuplot-nox procps python3
  # chart tests (tests/deploy): Helm's template engine (Go text/template + sprig),
  # YAML and JSON-schema libraries, yamllint
  golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev
  golang-github-xeipuuv-gojsonschema-dev yamllint python3-yaml
)
# The chart's objects are validated with the npm package kubernetes-models:
# Debian's node and npm unless a node with npm is already installed.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
if [ "${1:-}" = "--build" ]; then packages=("${build_packages[@]}"); fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
