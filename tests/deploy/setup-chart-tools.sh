#!/usr/bin/env bash
# Builds the chart test tools into DIR (offline Go build of chartrender;
# `npm ci` of the validator's locked dependencies from the npm registry).
# Usage: setup-chart-tools.sh DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$1"
mkdir -p "$dir/validate"
"$here/build-chartrender.sh" "$dir/chartrender" "$dir/go-cache"
cp "$here/validate/package.json" "$here/validate/package-lock.json" "$here/validate/validate.mjs" "$dir/validate/"
if ! cmp -s "$here/validate/package-lock.json" "$dir/validate/node_modules/.trickle-lock" 2>/dev/null; then
  (cd "$dir/validate" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$here/validate/package-lock.json" "$dir/validate/node_modules/.trickle-lock"
fi
echo "chart tools ready in $dir"
