#!/usr/bin/env bash
# Install what ember needs to build and test on a fresh Debian 12 machine.
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
	build-essential pkg-config clang-format git
	libseccomp-dev liburing-dev libfdt-dev device-tree-compiler libjansson-dev zlib1g-dev
	libhttp-parser-dev libcmocka-dev python3-pytest
	qemu-system-x86 linux-source-6.1 busybox-static e2fsprogs iproute2 fio hyperfine socat curl
	bc flex bison libelf-dev libssl-dev xz-utils
	libfuse3-dev fuse3 dmsetup
	clang libclang-rt-14-dev llvm
	acpica-tools
	debootstrap
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# lwIP's source (Debian's), compiled into ember for the MMDS network stack.
"$(dirname "$0")/fetch-lwip.sh" >/dev/null

if [ ! -e /dev/kvm ]; then
	if [ "${CI:-}" = true ]; then
		echo "setup: /dev/kvm is missing; CI needs it to boot guests" >&2
		exit 1
	fi
	echo "setup: warning: /dev/kvm is missing; guests cannot boot on this machine" >&2
fi
