#!/usr/bin/env bash
# Check that the README's set-up works the first time on a machine that has
# none of ember's packages: a minimal Debian 12 root (debootstrap minbase,
# plus make and git, which a user needs to clone and type `make`), a clean
# clone of this repository inside it, then the README's commands, each of
# which must succeed on its first run.
#
#   scripts/fresh-machine.sh          make run (set-up, build, boot the hello
#                                     guest), make unit, test_guests.py plain
#                                     and jailed
#   scripts/fresh-machine.sh --full   make test as the first command: the
#                                     whole of CI, guest kernel build included
#   --kernel-cache                    with --full: bind this machine's guest
#                                     kernel cache in (the build takes 6-10
#                                     minutes on 2 cores)
#   --rev=REV                         check commit REV instead of HEAD
#   --keep                            leave the root in place for a look
#
# Needs root, /dev/kvm, debootstrap and Debian's mirror. The base root is
# cached as a tarball and the .debs the set-up downloads are kept, both under
# /var/cache/ember/fresh-machine; neither is installed in the next root, so
# every run starts from the same bare system. Prints each step's time.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${EMBER_CACHE:-/var/cache/ember}/fresh-machine
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
full=0
keep=0
rev=HEAD
kernel_cache=
for arg in "$@"; do
	case "$arg" in
	--full) full=1 ;;
	--keep) keep=1 ;;
	--rev=*) rev=${arg#--rev=} ;;
	--kernel-cache) kernel_cache=${EMBER_CACHE:-/var/cache/ember}/kernel ;;
	*) echo "usage: $0 [--full] [--kernel-cache] [--keep] [--rev=REV]" >&2; exit 2 ;;
	esac
done

fail() { echo "fresh-machine: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mounts)"
[ -c /dev/kvm ] || fail "/dev/kvm missing: the smoke boots guests"
command -v debootstrap >/dev/null || fail "debootstrap missing (apt-get install debootstrap)"

start=$(date +%s)
step() { echo "== fresh-machine: $* (at $(($(date +%s) - start)) s)"; }

# 1. The base root, made once and kept as a tarball.
base="$cache/$suite-minbase.tar"
mkdir -p "$cache/debs/partial"
if [ ! -f "$base" ]; then
	step "debootstrap $suite minbase from $mirror"
	tmp=$(mktemp -d /var/tmp/ember-base.XXXXXX)
	debootstrap --variant=minbase --include=make,git,ca-certificates "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
		{ rm -rf "$tmp"; fail "debootstrap (log: $cache/debootstrap.log)"; }
	rm -f "$tmp"/var/cache/apt/archives/*.deb
	tar -C "$tmp" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$tmp"
fi

root=$(mktemp -d /var/tmp/ember-fresh.XXXXXX)
cleanup() {
	if [ "$keep" = 1 ]; then
		echo "fresh-machine: root kept at $root"
	else
		rm -rf "$root"
	fi
}
trap cleanup EXIT
step "unpacking the base root into $root"
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"

# 2. A clean clone: committed files only, as CI and a user get them.
step "cloning $top at $rev ($(git -C "$top" rev-parse --short "$rev"))"
git clone -q "$top" "$root/root/ember"
git -C "$root/root/ember" checkout -q --detach "$(git -C "$top" rev-parse "$rev")"

# 3. The README's commands, as root in the new root. Each runs once; the
# first failure ends the check.
if [ "$full" = 1 ]; then
	commands='make test'
else
	commands='make run
make unit
python3 -m pytest -q tests/integration/test_guests.py
EMBER_JAILED=1 python3 -m pytest -q tests/integration/test_guests.py'
fi
cat >"$root/root/fresh-check" <<EOF
#!/bin/bash
set -eo pipefail
cd /root/ember
export CI=true PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
t0=\$(date +%s)
while IFS= read -r -u 3 cmd; do
	echo "== fresh-machine: \$cmd (at \$((\$(date +%s) - t0)) s inside)"
	if ! bash -c "\$cmd" </dev/null; then
		echo "fresh-machine: FAILED on its first run: \$cmd" >&2
		exit 1
	fi
done 3<<'CMDS'
$commands
CMDS
echo "== fresh-machine: all commands passed (\$((\$(date +%s) - t0)) s inside)"
EOF
chmod +x "$root/root/fresh-check"

# A mount namespace of its own, so nothing stays mounted when it ends. The
# downloaded .debs are bound in to spare the mirror on the next run.
step "entering the root"
unshare --mount --propagation private --fork /bin/bash -euo pipefail -c '
root=$1 debs=$2 kernels=$3
# The root is a mount point, as / is on a machine: ember-jailer makes every
# mount below / private, which fails on a directory that is not one.
mount --bind "$root" "$root"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root/run"
mount --bind "$debs" "$root/var/cache/apt/archives"
if [ -n "$kernels" ]; then
	mkdir -p "$kernels" "$root/var/cache/ember/kernel"
	mount --bind "$kernels" "$root/var/cache/ember/kernel"
fi
exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb /root/fresh-check
' fresh "$root" "$cache/debs" "$kernel_cache" || fail "see the output above ($(($(date +%s) - start)) s)"
step "passed in $(($(date +%s) - start)) s"
