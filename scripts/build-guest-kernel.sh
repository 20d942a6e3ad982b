#!/usr/bin/env bash
# Build ember's stripped guest vmlinux from Debian's linux-source-6.1, our
# config fragment and our guest-kernel patches (resources/guest/patches: each
# works around a quirk of the nested hypervisor on ember's test machines and
# says so in its header). The result is cached outside the clone, keyed by
# the hash of the fragment, the patches, this script and the source tarball,
# so a rebuild only happens when one of them changes. Prints the path of the
# vmlinux.
#
#   --no-patches   build without the patches (for real VMX/SVM hosts, which
#                  do not need them; ember itself never depends on them)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
fragment="$top/resources/guest/kernel.config"
tarball=/usr/src/linux-source-6.1.tar.xz
cache=${EMBER_CACHE:-/var/cache/ember}

patches=("$top"/resources/guest/patches/*.patch)
case "${1:-}" in
--no-patches) patches=() ;;
"") ;;
*) echo "usage: $0 [--no-patches]" >&2; exit 2 ;;
esac

[ -f "$tarball" ] || { echo "build-guest-kernel: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }

key=$(cat "$fragment" "$0" ${patches[@]+"${patches[@]}"} <(stat -c '%s %Y' "$tarball") \
	<(echo "patches:${#patches[@]}") | sha256sum | cut -c1-16)
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
for p in ${patches[@]+"${patches[@]}"}; do
	patch -s -p1 -d "$src" <"$p" || { echo "build-guest-kernel: $p does not apply" >&2; exit 1; }
done
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
cp "$src/System.map" "$out/System.map"
mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$out/vmlinux"
