#!/usr/bin/env bash
# Build the userspace of ember's Linux test guest from Debian's busybox-static
# and our own guest/linux: /init (the scenario script) and ember-vsock (a
# static AF_VSOCK helper). The result is cached outside the clone, keyed by
# the hash of this script, guest/linux/* and the busybox-static version, and
# holds:
#   ember-vsock      the helper, also inside both images as /usr/bin/ember-vsock
#   initramfs.cpio   uncompressed newc (the guest kernel's gzip costs ~20 s of
#                    emulated time on ember's test machines), with /dev/console
#   rootfs.ext4      the same tree as a 64 MiB ext4 image (with a journal)
# Prints the directory's path as its last line. Needs root (mknod).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/guest/linux"
cache=${EMBER_CACHE:-/var/cache/ember}
busybox=/bin/busybox

die() {
	echo "build-guest-rootfs: $*" >&2
	exit 1
}

complete() {
	[ -f "$1/ember-vsock" ] && [ -f "$1/initramfs.cpio" ] && [ -f "$1/rootfs.ext4" ]
}

bbver=$(dpkg-query -W busybox-static 2>/dev/null) && [ -x "$busybox" ] ||
	die "busybox-static missing (apt-get install busybox-static)"

key=$( {
	cat "$0"
	for f in "$src"/*; do
		echo "== ${f##*/}"
		cat "$f"
	done
	echo "$bbver"
} | sha256sum | cut -c1-16)
out="$cache/rootfs/$key"
if complete "$out"; then
	echo "$out"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "needs root: the images hold device nodes made with mknod"
command -v gcc >/dev/null || die "gcc missing (apt-get install build-essential)"
command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 missing (apt-get install e2fsprogs)"

# Build beside $out so that the final mv is a rename: an interrupted build
# leaves only a .build.* directory (removed by the trap), never a half-filled $out.
mkdir -p "$cache/rootfs"
work=$(mktemp -d "$cache/rootfs/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
new="$work/out"
stage="$work/stage"
mkdir "$new" "$stage"
echo "build-guest-rootfs: building into $out" >&2

gcc -static -O2 -s -Wall -Wextra -Werror -o "$new/ember-vsock" "$src/ember-vsock.c" >&2

# The tree. Applet links are made here for every applet busybox has, at the
# path busybox --install would use, so that the guest spends no boot time on
# them; /sbin/init is /init, so an ext4 root boots our script without init=.
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,etc,root}
chmod 755 "$stage"
chmod 1777 "$stage/tmp"
chmod 700 "$stage/root"
install -m 755 "$busybox" "$stage/bin/busybox"
for path in $("$busybox" --list-full); do
	case $path in
	bin/busybox | linuxrc | sbin/init) ;;
	*) ln -s /bin/busybox "$stage/$path" ;;
	esac
done
ln -s /init "$stage/sbin/init"
for applet in sh mount reboot poweroff ip ifconfig ping nc dd sync sha256sum md5sum cat ls \
	echo sleep mkdir stty setsid cttyhack; do
	[ -L "$stage/bin/$applet" ] || [ -L "$stage/sbin/$applet" ] || [ -L "$stage/usr/bin/$applet" ] ||
		[ -L "$stage/usr/sbin/$applet" ] || die "busybox has no '$applet' applet"
done
install -m 755 "$src/init" "$stage/init"
install -m 755 "$new/ember-vsock" "$stage/usr/bin/ember-vsock"
# Without /dev/console the kernel starts /init with no stdin, stdout or stderr.
mknod -m 600 "$stage/dev/console" c 5 1
mknod -m 666 "$stage/dev/null" c 1 3

cat >"$stage/etc/fstab" <<'EOF'
# Mounted by /init with one `mount -a` (see scripts/build-guest-rootfs.sh).
proc      /proc  proc      nosuid,nodev,noexec     0 0
sysfs     /sys   sysfs     nosuid,nodev,noexec     0 0
devtmpfs  /dev   devtmpfs  nosuid,mode=0755        0 0
tmpfs     /tmp   tmpfs     nosuid,nodev,mode=1777  0 0
EOF
cat >"$stage/etc/ember-ready.sh" <<'EOF'
# $ENV of the console shell that /init starts: the shell is up and about to
# read its first command. Unset so that shells started from it stay quiet.
unset ENV
echo EMBER-READY
EOF
echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
echo 'root:x:0:' >"$stage/etc/group"
chmod 644 "$stage"/etc/*

# Sorted, so that every directory comes before what it holds.
(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
	"$busybox" cpio -o -H newc) >"$new/initramfs.cpio"
mkfs.ext4 -q -F -d "$stage" -L emberroot "$new/rootfs.ext4" 64M >&2

chmod 755 "$new"
if [ -e "$out" ] && ! complete "$out"; then
	rm -rf "$out"
fi
# A concurrent build of the same key may have won the race: its tree is ours.
mv -T "$new" "$out" 2>/dev/null || complete "$out" || die "cannot move the result to $out"
echo "$out"
