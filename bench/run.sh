#!/usr/bin/env bash
# run.sh - entry point of the benchmark suite: `./bench/run.sh BUILD_DIR [SECTION...]`
# (`make bench` calls it with the build dir).
#
# DESIGN
# Owns: checking that the tools the suite drives are present and the server
# is built, then handing over to bench/bench.py, which measures, prints the
# table and writes docs/PERFORMANCE.md.  Why a shell wrapper: the Makefile
# target stays one line, and a missing tool is reported in one sentence that
# names the Debian package instead of a Python traceback halfway through.
# Exit status: 0 whatever the figures are; 1 when something is broken (tool
# missing, server not building/starting, a section failing); 2 on bad usage.
set -u

here=$(cd "$(dirname "$0")" && pwd)

if [ $# -lt 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
	echo "usage: $0 BUILD_DIR [SECTION...]  (1-13, 6 = 5; none: all, writes docs/PERFORMANCE.md)" >&2
	exit 2
fi
build=$1
shift

missing=""
need() { # need TOOL PACKAGE
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing="$missing $1($2)"
}
# wrk drives sections 1 and 2 only, so a partial run without them does not need it
want_wrk=1
prev=""
for s in "$@"; do
	case "$prev" in --*) prev=""; continue ;; esac  # the value of an option
	case "$s" in
	[1-9] | 1[0-3]) [ "$want_wrk" = 1 ] && want_wrk=0; [ "$s" = 1 ] || [ "$s" = 2 ] && want_wrk=2 ;;
	esac
	prev=$s
done
[ "$want_wrk" = 0 ] || need wrk wrk
need nginx nginx-light
need curl curl
need ffmpeg ffmpeg
need ffprobe ffmpeg
need espeak-ng espeak-ng
need python3 python3
if [ -n "$missing" ]; then
	echo "bench: missing tools (Debian package):$missing; \`make bench-deps\` installs them" >&2
	exit 1
fi
if ! ls /usr/share/pocketsphinx/test/data/librivox/*.wav >/dev/null 2>&1; then
	echo "bench: no librivox test audio; install the Debian package pocketsphinx-testdata" >&2
	exit 1
fi
if [ ! -x "$build/voicestack" ]; then
	echo "bench: $build/voicestack not built (run \`ninja -C $build\` or \`make build\`)" >&2
	exit 1
fi

# nginx lives in /usr/sbin, which a non-root PATH may lack
# (bench.py writes docs/PERFORMANCE.md after a full run only)
PATH=$PATH:/usr/sbin exec python3 "$here/bench.py" --build "$build" "$@"
