#!/usr/bin/env bash
# Runs every unit test binary (cmocka) and the integration suite, then prints
# one closing line "N passed, N failed" over both.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
pass=0 fail=0 rc=0

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
echo "unit: $pass passed, $fail failed"

out=$(mktemp)
timeout 1200 /usr/bin/python3 tests/integration/run.py --bin "$build/voicestack" 2>&1 | tee "$out"
st=${PIPESTATUS[0]}
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
rm -f "$out"
ip=$(printf '%s' "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
if_=$(printf '%s' "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
pass=$((pass + ${ip:-0})); fail=$((fail + ${if_:-0}))
if [ $st -ne 0 ]; then rc=1; [ -z "$line" ] && fail=$((fail + 1)); fi
[ $fail -ne 0 ] && rc=1
echo "$pass passed, $fail failed"
exit $rc
