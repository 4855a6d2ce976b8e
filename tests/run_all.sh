#!/usr/bin/env bash
# tests/run_all.sh BUILD [ASAN_BUILD]
# Runs, in order, and prints one closing line "N passed, N failed" over all:
#   0. the source checks, one counted test each: the include layers of src/
#      (tests/check_layers.py) and the house format (clang-format --dry-run
#      --Werror with the repository's .clang-format over src/ tools/ fuzz/
#      tests/unit/);
#   1. every unit test binary (cmocka) and the fuzz corpus replays of BUILD;
#   2. the integration suite against BUILD/voicestack;
#   3. if ASAN_BUILD is given: the integration suite again against that
#      ASan+UBSan build (make test: build-asan). Any sanitizer report from the
#      front or a worker, a leak at exit (servers are stopped with SIGTERM and
#      must return from main) or an unclean stop fails the test it happened in
#      (tests/integration/harness.py). Modules with SANITIZER_PASS = False
#      (deployment: package, units, balancers) run in step 2 only;
#   4. a short libFuzzer run of every fuzz/fuzz_*.c driver (FUZZ_SECONDS each,
#      default 10; 0 skips this step) on a temporary copy of its corpus. A
#      finding fails the driver and its reproducer is kept and named.
set -u
build=${1:-build}
asan=${2:-}
fuzz_secs=${FUZZ_SECONDS:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pass=0 fail=0 rc=0

# check NAME CMD...: one counted test; its output is shown only on failure
check() {
  local name=$1 out st
  shift
  out=$("$@" 2>&1); st=$?
  if [ $st -eq 0 ]; then
    pass=$((pass + 1)); echo "ok   $name"
  else
    fail=$((fail + 1)); rc=1; echo "FAIL $name"; printf '%s\n' "$out" | head -n 60
  fi
}
echo "== source checks"
check layers /usr/bin/python3 tests/check_layers.py
mapfile -t c_files < <(find src tools fuzz tests/unit -name '*.[ch]' | sort)
check clang-format clang-format --dry-run --Werror "${c_files[@]}"

# fuzz/ replay binaries (build/fuzz/fuzz_<name>) replay fuzz/corpus/<name>/
# and print the same cmocka closing lines
for t in "$build"/tests/unit/test_* "$build"/fuzz/fuzz_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  args=()
  case ${t##*/} in fuzz_*) n=${t##*/}; args=("fuzz/corpus/${n#fuzz_}") ;; esac
  out=$(VS_SOURCE_ROOT="$root" CMOCKA_MESSAGE_OUTPUT=stdout timeout 300 "$t" "${args[@]}" 2>&1); st=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n1)
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0}))
  if [ $st -ne 0 ] && [ -z "$f" ]; then fail=$((fail + 1)); echo "FAIL $t exited $st"; fi
  [ $st -ne 0 ] && rc=1
done
echo "checks + unit: $pass passed, $fail failed"

# integration BIN [VAR=VALUE...]: one run of the suite; adds its counts
integration() {
  local bin=$1 out st line ip if_
  shift
  out=$(mktemp)
  env "$@" timeout 1200 /usr/bin/python3 tests/integration/run.py --bin "$bin" 2>&1 | tee "$out"
  st=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
  rm -f "$out"
  ip=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  if_=$(printf '%s' "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
  pass=$((pass + ${ip:-0})); fail=$((fail + ${if_:-0}))
  if [ $st -ne 0 ]; then rc=1; [ -z "$line" ] && fail=$((fail + 1)); fi
}

echo "== integration ($build/voicestack)"
integration "$build/voicestack"

if [ -n "$asan" ]; then
  # halt_on_error + -fno-sanitize-recover (meson setup in the Makefile): the
  # first finding kills the process, so it cannot be missed or scroll by.
  # Workers are the same instrumented binary and inherit these variables;
  # the engines' libraries are not instrumented (only leaks inside them may
  # be suppressed, in tests/sanitizer/lsan.supp, with a reason).
  # fast_unwind_on_malloc=0: the libraries have no frame pointers, so the
  # fast unwinder stops inside them and a suppression could only name a
  # whole library; full stacks let it name the one leaking function.
  echo "== integration, sanitizers ($asan/voicestack, ASan + UBSan + LeakSanitizer)"
  integration "$asan/voicestack" VS_SANITIZER_PASS=1 \
    ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:print_summary=1:fast_unwind_on_malloc=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS=suppressions="$root/tests/sanitizer/lsan.supp":print_suppressions=0
fi

if [ "$fuzz_secs" -gt 0 ]; then
  echo "== libFuzzer, ${fuzz_secs}s per driver"
  for src in fuzz/fuzz_*.c; do
    name=${src#fuzz/fuzz_}; name=${name%.c}
    work=$(mktemp -d "/tmp/vs-fuzz-$name.XXXXXX")
    VS_FUZZ_WORK=$work timeout $((fuzz_secs + 300)) fuzz/run.sh "$name" "$fuzz_secs" \
      >"$work/log" 2>&1
    st=$?
    if [ $st -eq 0 ]; then
      pass=$((pass + 1))
      echo "ok   fuzz_$name ($(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log") runs)"
      rm -rf "$work"
    else
      fail=$((fail + 1)); rc=1
      echo "FAIL fuzz_$name: exit $st; log $work/log"
      tail -n 40 "$work/log"
      for a in "$work"/artifacts/*; do
        [ -e "$a" ] && echo "     reproducer: $a (replay: build/fuzz/fuzz_$name $a)"
      done
    fi
  done
fi

[ $fail -ne 0 ] && rc=1
echo "$pass passed, $fail failed"
exit $rc
