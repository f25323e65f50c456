#!/usr/bin/env bash
# A test that must not leak ports: its private server (server_args in
# BUILD.bazel) lets one process hold at most 2 ports, so a third request is
# denied, and `portpicker --no-fallback` then exits 1 and says why instead of
# picking an unreserved port. Here the denial is what the test expects.
set -euo pipefail
portpicker --no-fallback $$ >/dev/null
portpicker --no-fallback $$ >/dev/null
if err=$(portpicker --no-fallback $$ 2>&1 >/dev/null); then
  echo "a third port was leased despite --portserver_max_ports_per_pid=2"
  exit 1
fi
case $err in
  *quota*) echo "third port denied as expected: $err" ;;
  *) echo "third port denied, but not for the quota: $err"; exit 1 ;;
esac
