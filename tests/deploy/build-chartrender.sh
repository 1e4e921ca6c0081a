#!/usr/bin/env bash
# Builds tests/deploy/chartrender offline from Debian's Go packages
# (golang-go, golang-github-masterminds-sprig-dev, golang-k8s-sigs-yaml-dev,
# golang-github-xeipuuv-gojsonschema-dev; scripts/install-deps.sh has them).
# GOPATH mode: the imports resolve in /usr/share/gocode, where Debian
# installs Go libraries' sources (sprig v3 without its /v3 directory; inside
# GOPATH, sprig's own /v3 imports resolve by Go's minimal module
# compatibility); nothing is fetched. Usage: build-chartrender.sh OUTPUT [GOCACHE-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
cache="${2:-$(dirname "$out")/go-cache}"
mkdir -p "$cache"
cd "$here/chartrender"
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE="$cache" \
  go build -o "$out" .
