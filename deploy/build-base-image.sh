#!/usr/bin/env bash
# Build a Debian bookworm base image with Python 3.11 from scratch (debootstrap),
# for machines that cannot pull python:3.11-slim from a registry.
#
#   deploy/build-base-image.sh [TAG]          (default: localhost/commentguard-base:bookworm)
#
# Skips the build when TAG already exists (FORCE=1 rebuilds). Needs root, debootstrap
# and podman. MIRROR overrides the Debian mirror (default: the first deb.debian.org-style
# URI this machine's apt uses, else http://deb.debian.org/debian).
#
# Site trust: certificates in /usr/local/share/ca-certificates on this machine (a proxy's
# CA, say) are copied into the image's trust store, and PIP_CERT / REQUESTS_CA_BUNDLE /
# SSL_CERT_FILE point at that store, so `pip install` inside a build works behind the same
# TLS-intercepting proxy as the host. Nothing is copied when the directory is empty.
set -euo pipefail

TAG=${1:-localhost/commentguard-base:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PODMAN=(podman)

if [[ "${FORCE:-0}" != 1 ]] && "${PODMAN[@]}" image exists "$TAG"; then
  echo "base image $TAG exists: kept (FORCE=1 rebuilds it)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d /var/tmp/commentguard-base.XXXXXX)
cleanup() { rm -rf --one-file-system "$work"; }
trap cleanup EXIT
rootfs=$work/rootfs

echo "debootstrap $SUITE (minbase + python3) from $MIRROR ..."
# python3-venv: `python3 -m venv` (with pip inside the venv); python3-pip: a system pip.
# debootstrap installs Depends only, not Recommends, so no compilers come with python3-pip.
timeout 900 debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$rootfs" "$MIRROR" > "$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates > /dev/null 2>&1
fi
# The same apt sources for later `apt-get` in derived images; no package lists or archives.
echo "deb $MIRROR $SUITE main" > "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
       "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/* "$rootfs"/tmp/*
# Documentation, manual pages and translations (about 50 MB); licences are kept.
find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
# Mount points that must not be baked in.
rm -rf "${rootfs:?}"/proc/* "${rootfs:?}"/sys/* "${rootfs:?}"/dev/*

bundle=/etc/ssl/certs/ca-certificates.crt
tar --numeric-owner -C "$rootfs" -c . | "${PODMAN[@]}" import --quiet \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV PIP_CERT=$bundle" \
  --change "ENV REQUESTS_CA_BUNDLE=$bundle" \
  --change "ENV SSL_CERT_FILE=$bundle" \
  --change 'CMD ["python3"]' \
  --message "debootstrap $SUITE minbase + python3" \
  - "$TAG" > /dev/null
echo "base image $TAG built: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$TAG") bytes"
