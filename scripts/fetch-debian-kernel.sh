#!/usr/bin/env bash
# Fetch Debian's linux-image-cloud-amd64 kernel (the bzImage only, unpacked
# from the .deb, not installed) into the cache and print its path. Unit tests
# parse its setup header: a real distro bzImage, not one of ours.
set -euo pipefail
cache=${EMBER_CACHE:-/var/cache/ember}/debian-kernel
found=$(ls "$cache"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [ -n "$found" ]; then
	echo "$found"
	exit 0
fi
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$pkg" ]; then
	apt-get update -q >&2
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
[ -n "$pkg" ] || { echo "fetch-debian-kernel: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg" >&2)
mkdir -p "$cache"
dpkg-deb -x "$work"/*.deb "$work/x"
mkdir -p "$cache/boot"
cp "$work"/x/boot/vmlinuz-* "$cache/boot/"
ls "$cache"/boot/vmlinuz-* | head -n1
