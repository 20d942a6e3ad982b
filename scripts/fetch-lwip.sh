#!/usr/bin/env bash
# Fetch Debian's lwIP source package (lwip 2.1.3+dfsg1, Debian's patches
# applied) into the cache and print its directory. ember compiles lwIP's
# core into itself with its own lwipopts.h (vmm/mmds/lwip/) for the MMDS
# network stack: Debian's binary liblwip-dev ships only a shared library
# built for a threaded host port (NO_SYS=0, malloc'd memory), which neither
# links into ember's static binary nor runs on its VMM thread with fixed
# pools. apt verifies the files against the signed archive index; the
# deb-src list lives in a private directory, the machine's apt setup is
# left alone.
set -euo pipefail
version=2.1.3+dfsg1-2
cache=${EMBER_CACHE:-/var/cache/ember}
dest=$cache/lwip-$version
if [ -f "$dest/src/core/tcp.c" ]; then
	echo "$dest"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/src"
cat >"$work/parts/debian-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts"
	-o Dir::State::Lists="$work/lists" -o APT::Sandbox::User=root)
apt-get "${apt[@]}" -q update >&2
(cd "$work/src" && apt-get "${apt[@]}" -q source --download-only "lwip=$version" >&2)
dpkg-source -q -x "$work"/src/lwip_*.dsc "$work/lwip" >&2
mkdir -p "$cache"
rm -rf "$dest.tmp"
mv "$work/lwip" "$dest.tmp"
chmod -R a+rX "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "$dest"
