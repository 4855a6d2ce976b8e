#!/usr/bin/env bash
# fuzz/run.sh NAME [SECONDS] [libFuzzer args...]
# Builds fuzz/fuzz_NAME.c with clang + libFuzzer + ASan + UBSan in /tmp and
# fuzzes for SECONDS (default 60) on a copy of fuzz/corpus/NAME/ (new inputs
# stay in the copy; the checked-in corpus is never modified). Crash files go
# to /tmp/vs-fuzz-NAME/artifacts/. VS_FUZZ_WORK=DIR works in DIR instead
# (tests/run_all.sh gives each run a fresh one). Exits with libFuzzer's
# status: 0 = no finding. See fuzz/README.md.
set -eu
name=${1:?usage: fuzz/run.sh NAME [SECONDS] [libFuzzer args...]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
root=$(cd "$(dirname "$0")/.." && pwd)
work=${VS_FUZZ_WORK:-/tmp/vs-fuzz-$name}
cc=${CC_FUZZ:-clang}

# sources each driver needs from src/, and the pkg-config packages they use
case $name in
speech_json|transcript_render|transcription_fields)
	srcs="src/api/openai.c src/api/openai_utf8.c src/api/openai_lang.c
	      src/api/openai_speech.c src/api/openai_stream.c src/api/openai_render.c src/api/openai_transcript.c
	      src/api/openai_transcription.c src/api/openai_grammar.c src/engine/transcript.c src/media/format.c"
	pkgs="jansson" ;;
dotenv)  srcs="src/config/dotenv.c src/common/file.c"; pkgs="" ;;
api_keys) srcs="src/admit/keys.c src/admit/lanes.c src/common/file.c"; pkgs="nettle" ;;
realtime_event)
	srcs="src/api/openai_realtime.c src/api/openai.c src/api/openai_utf8.c src/api/openai_lang.c
	      src/api/openai_transcription.c src/api/openai_grammar.c"
	pkgs="jansson nettle" ;;
frame)   srcs="src/worker/proto.c"; pkgs="jansson" ;;
wyoming) srcs="src/wyoming/event.c"; pkgs="jansson" ;;
decode)  srcs="src/media/decode.c src/media/format.c"
         pkgs="jansson libavformat libavcodec libavutil libswresample" ;;
*) have=$(cd "$root/fuzz" && ls fuzz_*.c | sed 's/^fuzz_//;s/\.c$//' | tr '\n' ' ')
   echo "unknown fuzzer '$name' (have: $have)" >&2
   exit 2 ;;
esac
# per-driver libFuzzer defaults: uploads are larger than JSON bodies, and an
# FFmpeg decode of a hostile file may legitimately take a while
case $name in
decode) defaults="-max_len=20000 -timeout=20 -rss_limit_mb=3072" ;;
frame|wyoming) defaults="-max_len=4096 -timeout=10" ;;
*)      defaults="-max_len=8192 -timeout=10" ;;
esac

mkdir -p "$work/artifacts" "$work/corpus"
cp -n "$root/fuzz/corpus/$name"/* "$work/corpus/" 2>/dev/null || true
flags=$([ -n "$pkgs" ] && pkg-config --cflags --libs $pkgs || true)
(cd "$root" && $cc -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -Ifuzz \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter \
	"fuzz/fuzz_$name.c" $srcs $flags -lm -o "$work/fuzz_$name")
echo "built $work/fuzz_$name; fuzzing ${secs}s on $work/corpus"
cd "$work"
# shellcheck disable=SC2086 # defaults is a word list on purpose
exec "./fuzz_$name" $defaults -max_total_time="$secs" -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$@" "$work/corpus"
