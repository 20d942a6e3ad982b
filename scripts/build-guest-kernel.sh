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
#   --acpi         the kernel Firecracker recommends: kernel-acpi.config on
#                  top of kernel.config (ACPI on; MP table and command-line
#                  virtio devices off; VMGenID, virtio-rng)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
fragments=("$top/resources/guest/kernel.config")
tarball=/usr/src/linux-source-6.1.tar.xz
cache=${EMBER_CACHE:-/var/cache/ember}

patches=("$top"/resources/guest/patches/*.patch)
for arg in "$@"; do
	case "$arg" in
	--no-patches) patches=() ;;
	--acpi) fragments+=("$top/resources/guest/kernel-acpi.config") ;;
	*) echo "usage: $0 [--no-patches] [--acpi]" >&2; exit 2 ;;
	esac
done

[ -f "$tarball" ] || { echo "build-guest-kernel: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 1; }

key=$(cat "${fragments[@]}" "$0" ${patches[@]+"${patches[@]}"} <(stat -c '%s %Y' "$tarball") \
	<(echo "patches:${#patches[@]} fragments:${#fragments[@]}") | sha256sum | cut -c1-16)
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
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "${fragments[@]}" >&2
make -C "$src" -s ARCH=x86_64 olddefconfig >&2
# Every option the fragments ask for must have survived olddefconfig; where
# two fragments name the same option, the later one's value is the request.
missing=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) opt=${line%%=*}; grep -q "^$opt=" "$src/.config" && { echo "still set: $opt" >&2; missing=1; } ;;
	CONFIG_*=*) grep -qx "$line" "$src/.config" || { echo "not applied: $line" >&2; missing=1; } ;;
	esac
done < <(grep -h '^CONFIG_' "${fragments[@]}" | tac | awk -F= '!seen[$1]++')
[ "$missing" = 0 ] || { echo "build-guest-kernel: config fragments not fully applied" >&2; exit 1; }
make -C "$src" -s ARCH=x86_64 -j"$(nproc)" vmlinux >&2
mkdir -p "$out"
strip -o "$out/vmlinux.tmp" "$src/vmlinux"
cp "$src/.config" "$out/config"
cp "$src/System.map" "$out/System.map"
mv "$out/vmlinux.tmp" "$out/vmlinux"
echo "$out/vmlinux"
