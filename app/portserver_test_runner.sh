#!/usr/bin/env bash
# Runs one test with a private port server; used by portserver_test (defs.bzl).
# Usage: portserver_test_runner.sh SERVER POOL LOCKS TEST [TEST_ARGS...]
#   SERVER  the portserver binary (runfiles path)
#   POOL    its --portserver_static_pool
#   LOCKS   "locks" to pass --portserver_lock_ports, "nolocks" otherwise
#   TEST    the test executable (runfiles path)
# The test sees PORTSERVER_ADDRESS and PORTSERVER_POOL; the server's log is
# written to $TEST_UNDECLARED_OUTPUTS_DIR/portserver.log. Exit status: the
# test's, or 1 if the server could not start or did not stop cleanly.
set -u

if [ "$#" -lt 4 ]; then
  echo "portserver_test: usage: $0 SERVER POOL locks|nolocks TEST [ARGS...]" >&2
  exit 2
fi
server=$1 pool=$2 locks=$3 test=$4
shift 4

outputs=${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-$(mktemp -d)}}
mkdir -p "$outputs"
log="$outputs/portserver.log"
address="@portserver-test-$$-$RANDOM$RANDOM"
flags=(--portserver_address="$address" --portserver_static_pool="$pool" --verbose
  --portserver_state_file=none)
[ "$locks" = locks ] && flags+=(--portserver_lock_ports)

# Read the server's stderr until it says it serves (or ends: it failed), then
# keep copying it to the log in the background.
coproc SERVER { exec "$server" "${flags[@]}" 2>&1; }
server_pid=$SERVER_PID
trap 'kill -TERM "$server_pid" 2>/dev/null' EXIT
ready=0
while IFS= read -r line <&"${SERVER[0]}"; do
  printf '%s\n' "$line" >>"$log"
  if [[ $line == *"Serving on"* ]]; then
    ready=1
    break
  fi
done
if [ "$ready" -ne 1 ]; then
  wait "$server_pid"
  echo "portserver_test: the port server did not start (exit $?): $server ${flags[*]}" >&2
  cat "$log" >&2
  exit 1
fi
# Bash does not pass coproc descriptors to background jobs: use a copy.
exec {server_output}<&"${SERVER[0]}"
cat <&"$server_output" >>"$log" &
copier=$!
exec {server_output}<&-

export PORTSERVER_ADDRESS=$address PORTSERVER_POOL=$pool
"$test" "$@"
status=$?

kill -TERM "$server_pid"
wait "$server_pid"
server_status=$?
trap - EXIT
wait "$copier"
if [ "$server_status" -ne 0 ]; then
  echo "portserver_test: the port server exited with $server_status; log: $log" >&2
  tail -n 20 "$log" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
