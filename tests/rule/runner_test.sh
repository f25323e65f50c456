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
  run_with_flags "$1" 0 "${@:2}"
}

run_with_flags() {  # run_with_flags POOL N FLAG... ARGS...: with server_args
  n=$((n + 1))
  local outputs="$tmp/run$n"
  mkdir -p "$outputs"
  local pool=$1 count=$2
  shift 2
  out=$(TEST_UNDECLARED_OUTPUTS_DIR="$outputs" \
    "$runner" "$server" "$pool" "$count" "${@:1:count}" "$portpicker" \
    "$inner" "${@:count+1}" 2>&1)
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

# 4. server_args reach the server: with a quota of 1 the second port is
# denied, and the test sees why.
run_with_flags 27030-27039 2 --portserver_max_ports_per_pid=1 --debug quota
[ "$status" -eq 0 ] || fail "quota: $out"
grep -q "quota" "$log" || fail "quota: the server's log does not mention it"

# 4b. A pool in server_args (defs.bzl refuses one, but the runner is also
# called by hand) does not override the rule's: its own flags come last.
run_with_flags 27050-27059 1 -portserver_static_pool=27060-27069 env 0
[ "$status" -eq 0 ] || fail "server_args pool: the rule's pool lost: $out"

# 4c. A server flag that needs a value, given without it, is refused: it
# would take the rule's --portserver_address as its value (a reviewer's).
run_with_flags 27070-27079 1 --portserver_metrics_file env 0
[ "$status" -eq 1 ] || fail "valueless server flag: exit $status: $out"
grep -q "needs its value after '='" <<<"$out" || fail "valueless flag: $out"

# 5. An older caller's "locks" still means no server flags; an empty pool
# is said so (Bazel drops an empty argument from a sh_test's args, and
# defs.bzl refuses one, but the runner is also called by hand).
out=$(TEST_UNDECLARED_OUTPUTS_DIR="$tmp/legacy" "$runner" "$server" 27040-27049 \
  locks "$portpicker" "$inner" env 0 2>&1)
[ "$?" -eq 0 ] || fail "legacy 'locks' form: $out"
out=$("$runner" "$server" "" 0 "$portpicker" "$inner" env 0 2>&1)
[ "$?" -eq 1 ] || fail "empty pool: exit not 1: $out"
grep -q "the pool is empty" <<<"$out" || fail "empty pool: $out"

echo "runner_test: $failures failure(s)"
[ "$failures" -eq 0 ]
