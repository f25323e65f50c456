#!/usr/bin/env bash
# Runs one test with a private port server; used by portserver_test (defs.bzl).
# Usage: portserver_test_runner.sh SERVER POOL N [FLAG...] PORTPICKER TEST [ARGS...]
#   SERVER      the portserver binary (runfiles path)
#   POOL        its --portserver_static_pool
#   N FLAG...   N more flags for the server (server_args; "locks" or
#               "nolocks", from older callers, mean 0: the locks are always
#               held)
#   PORTPICKER  the portpicker command (//client:portpicker_cli)
#   TEST        the test executable (runfiles path)
# The test sees PORTSERVER_ADDRESS and PORTSERVER_POOL, and `portpicker` on
# its PATH (also as $PORTPICKER, an absolute path): a shell test leases a port
# for itself with `port=$(portpicker $$)`. The server's log is written to
# $TEST_UNDECLARED_OUTPUTS_DIR/portserver.log. Exit status: the test's, or 1
# if the server could not start (its error, e.g. "portserver: error: bad
# --portserver_static_pool ...", is then copied to stderr, i.e. test.log) or
# did not stop cleanly.
set -u

usage() {
  echo "portserver_test: usage: $0 SERVER POOL N [FLAG...] PORTPICKER TEST [ARGS...]" >&2
  exit 2
}
[ "$#" -ge 5 ] || usage
server=$1 pool=$2 count=$3
shift 3
case $count in
  locks | nolocks) count=0 ;;
  '' | *[!0-9]*) usage ;;
esac
[ "$#" -ge $((count + 2)) ] || usage
server_args=("${@:1:count}")
shift "$count"
for arg in ${server_args[@]+"${server_args[@]}"}; do
  bare=${arg#--}
  bare=${bare#-}
  case $bare in
    *=* | verbose | debug | portserver_reserve_pool_in_kernel | \
      portserver_lock_ports | no*) ;;
    *)
      # Alone, a flag with a value would take the next word as it: the
      # rule's own --portserver_address.
      echo "portserver_test: server flag '$arg' needs its value after '='" >&2
      exit 1
      ;;
  esac
done
portpicker=$1 test=$2
shift 2
if [ -z "$pool" ]; then
  echo "portserver_test: the pool is empty: give pool = \"FIRST-LAST\"" >&2
  exit 1
fi

outputs=${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-$(mktemp -d)}}
mkdir -p "$outputs"
log="$outputs/portserver.log"
work=$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/portserver_test.XXXXXX")
address="@portserver-test-$$-$RANDOM$RANDOM"
# The server_args first: the rule's own flags come last, and the last of a
# repeated flag wins, so the address, pool and state file are always these.
flags=(${server_args[@]+"${server_args[@]}"} --portserver_address="$address"
  --portserver_static_pool="$pool" --verbose --portserver_state_file=none)

# The server writes to a FIFO that this shell holds open for reading: read it
# until the server says it serves, or until end of file (it exited: its
# error is in what was read). Unlike a coproc, whose descriptors bash drops
# when the coprocess exits, the FIFO stays readable to the end.
mkfifo "$work/server.out"
"$server" "${flags[@]}" </dev/null >"$work/server.out" 2>&1 &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
exec {server_output}<"$work/server.out"
ready=0
while IFS= read -r line <&"$server_output"; do
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
# Keep copying the server's output to the log while the test runs.
cat <&"$server_output" >>"$log" &
copier=$!
exec {server_output}<&-

# `portpicker` on PATH, by absolute path: the test may change directory.
mkdir "$work/bin"
case $portpicker in
  /*) ;;
  *) portpicker="$PWD/$portpicker" ;;
esac
ln -s "$portpicker" "$work/bin/portpicker"
export PORTSERVER_ADDRESS=$address PORTSERVER_POOL=$pool PORTPICKER=$portpicker
export PATH="$work/bin:$PATH"
"$test" "$@"
status=$?

kill -TERM "$server_pid"
wait "$server_pid"
server_status=$?
trap 'rm -rf "$work"' EXIT
wait "$copier"
if [ "$server_status" -ne 0 ]; then
  echo "portserver_test: the port server exited with $server_status; log: $log" >&2
  tail -n 20 "$log" >&2
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
