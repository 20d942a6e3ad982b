#!/usr/bin/env bash
# Build ember's stripped guest vmlinux from Debian's linux-source-6.1 and our
# config fragment. The result is cached outside the clone, keyed by the hash
# of the fragment, this script and the source tarball, so a rebuild only
# happens when one of them changes. Prints the path of the vmlinux.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
fragment="$top/resources/guest/kernel.config"
tarball=/usr/src/linux-source-6.1.tar.xz
cache=${EMBER_CACHE:-/var/cache/ember}

[ -f "$tarball" ] || { echo "build-guest-kernel: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }

key=$(cat "$fragment" "$0" <(stat -c '%s %Y' "$tarball") | sha256sum | cut -c1-16)
out="$cache/kernel/$key"
if [ -f "$out/vmlinux" ]; then
	echo "$out/vmlinux"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "build-guest-kernel: building into $out (takes several minutes)" >&2
tar -C "$work" -xf "$tarball"
src="$work/linux-source-6.1"
make -C "$src" -s ARCH=x86_64 tinyconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >&2
make -C "$src" -s ARCH=x86_64 olddefconfig >&2
# Every option the fragment asks for must have survived olddefconfig.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) opt=${line%%=*}; grep -q "^$opt=" "$src/.config" && { echo "still set: $opt" >&2; missing=1; } ;;
	CONFIG_*=*) grep -qx "$line" "$src/.config" || { echo "not applied: $line" >&2; missing=1; } ;;
	esac
done <"$fragment"
[ "$missing" = 0 ] || { echo "build-guest-kernel: config fragment not fully applied" >&2; exit 1; }
make -C "$src" -s ARCH=x86_64 -j"$(nproc)" vmlinux >&2
mkdir -p "$out"
strip -o "$out/vmlinux.tmp" "$src/vmlinux"
cp "$src/.config" "$out/config"
mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$out/vmlinux"
