#!/usr/bin/env bash
# Builds the trickled container image without a Docker daemon: podman (buildah
# inside) from Debian, on a Debian bookworm base made locally with debootstrap
# (no registry is needed). Idempotent: the base is made once and kept.
#
#   deploy/build-image.sh [TAG]     default TAG: localhost/trickle:<project version>
#
# Environment: TRICKLE_BASE_IMAGE to build on another base (e.g.
# docker.io/library/debian:bookworm-slim where a registry is reachable);
# TRICKLE_DEBIAN_MIRROR (default http://deb.debian.org/debian).
# Prints the build time; the image build is a full Release build of trickled
# and trickle inside the build stage (about 25 min on 2 busy cores).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=deploy/podman-env.sh
. "$root/deploy/podman-env.sh"
tag="${1:-$TRICKLE_DEFAULT_IMAGE}"
base="${TRICKLE_BASE_IMAGE:-localhost/trickle-base:bookworm}"
mirror="${TRICKLE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "$base" = "localhost/trickle-base:bookworm" ] && ! podman image exists "$base"; then
  echo "== making the base image $base with debootstrap --variant=minbase bookworm"
  rootfs="$(mktemp -d /var/tmp/trickle-rootfs-XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  start=$(date +%s)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -20 "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  # Security and point-release updates, as the official image has them.
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
  # Keep images small (as debian:bookworm-slim does): no docs, man pages or
  # locales from later installs, no apt caches.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-image-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
SLIM
  echo 'APT::Install-Recommends "false"; APT::Install-Suggests "false";' >"$rootfs/etc/apt/apt.conf.d/01-image-slim"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase bookworm" - "$base" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "   base made in $(( $(date +%s) - start )) s"
fi

echo "== building $tag from deploy/Dockerfile (Release build in the build stage)"
start=$(date +%s)
# --network=host: the build stage's apt-get reaches the Debian mirror as the host does.
podman build --network=host --layers \
  --build-arg BASE_IMAGE="$base" --build-arg VERSION="$TRICKLE_VERSION" \
  -f "$root/deploy/Dockerfile" -t "$tag" "$root"
seconds=$(( $(date +%s) - start ))
echo "== built $tag in $seconds s"
podman image inspect "$tag" --format 'size {{.Size}} bytes, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}'
