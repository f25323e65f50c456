#!/usr/bin/env bash
# Black-box test of app/portserver_test_runner.sh (see BUILD.bazel).
# Usage: runner_test.sh RUNNER SERVER PORTPICKER INNER_TEST
set -u
runner=$1 server=$2 portpicker=$3 inner=$4
runs=${BAD_POOL_RUNS:-25}
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
tmp=${TEST_TMPDIR:-$(mktemp -d)}
n=0

run() {  # run POOL ARGS...: the runner as defs.bzl calls it; sets out, status
  n=$((n + 1))
  local outputs="$tmp/run$n"
  mkdir -p "$outputs"
  out=$(TEST_UNDECLARED_OUTPUTS_DIR="$outputs" \
    "$runner" "$server" "$1" locks "$portpicker" "$inner" "${@:2}" 2>&1)
  status=$?
  log="$outputs/portserver.log"
}

# 1. A bad pool: the server's one-line error reaches stderr (test.log) on
# every run, and the runner fails.
missing=0
for i in $(seq 1 "$runs"); do
  run not-a-pool env 0
  if [ "$status" -ne 1 ]; then
    fail "bad pool, run $i: exit $status (expected 1)"
  fi
  if ! grep -q "^portserver: error: bad --portserver_static_pool 'not-a-pool'" <<<"$out"; then
    missing=$((missing + 1))
    echo "bad pool, run $i: no server error in the output:"
    sed 's/^/  | /' <<<"$out"
  fi
  if grep -q "unbound variable" <<<"$out"; then
    fail "bad pool, run $i: the runner itself failed: $out"
  fi
done
[ "$missing" -eq 0 ] || fail "the server's error was missing in $missing of $runs runs"
echo "bad pool: error shown in $((runs - missing)) of $runs runs"

# 2. A good run: the test sees the server and portpicker; its exit status
# passes through; the server's log is kept.
for code in 0 3; do
  run 27000-27009 env "$code"
  [ "$status" -eq "$code" ] || fail "test exited $code, runner exited $status: $out"
  grep -q "inner_test: ports" <<<"$out" || fail "no ports leased: $out"
  grep -q "Serving on" "$log" || fail "no 'Serving on' in $log"
done

# 3. The lease-lifetime rule, as the README states it.
run 27020 lifetime
[ "$status" -eq 0 ] || fail "lifetime: $out"
run 27021 lifetime-helper
[ "$status" -eq 0 ] || fail "lifetime-helper: $out"

echo "runner_test: $failures failure(s)"
[ "$failures" -eq 0 ]
