#!/bin/sh
# make_deb.sh [DIST] - build the Debian package of this working tree into
# DIST (default dist/; `make deb`).
#
# dpkg-buildpackage writes its results into the parent of the source
# directory and debhelper writes debian/ in the tree, so the build runs on a
# copy: the files git knows (tracked, and new ones not ignored) as they are
# on disk, copied into $DEB_WORK/voicestack-VERSION (default build-deb/,
# ignored by git); the .deb, .buildinfo and .changes are then moved to DIST.
# Nothing is written outside the repository unless DEB_WORK or DIST say so.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:-dist}
case $dist in /*) ;; *) dist=$root/$dist ;; esac
work=${DEB_WORK:-$root/build-deb}
case $work in /*) ;; *) work=$root/$work ;; esac
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
src=$work/voicestack-$version

rm -rf "$work"
mkdir -p "$src" "$dist"
# a tracked file deleted in the working tree is left out (--ignore-failed-read)
(cd "$root" && git ls-files -z --cached --others --exclude-standard |
	tar -c --null -T - --ignore-failed-read -f - 2>/dev/null) | tar -x -C "$src"
(cd "$src" && dpkg-buildpackage -b -us -uc -jauto)
for f in "$work"/voicestack*_"$version"_*; do
	mv "$f" "$dist/"
done
ls -1 "$dist"/voicestack*_"$version"_*
# the verdict a user building the package should see (the test also asks
# for info and pedantic tags)
lintian --fail-on error,warning "$dist"/voicestack_"$version"_*.changes
