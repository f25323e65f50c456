#!/bin/sh
# Wrapper for //tests:bindable_test: runs tests/bindable_test.py against
# //app:portserver inside a network namespace of its own (unshare -n, with
# loopback up), so that the sysctls it sets and the ports it uses never touch
# the host. Needs root (the suite runs as root here).
#
# By hand (from the workspace root, after `bazel build //app:portserver`):
#   PORTSERVER_BIN=bazel-bin/app/portserver sh tests/bindable_test.sh [-v] [Class.test]
set -eu

here="$(dirname "$0")"
if [ -z "${PORTSERVER_BIN:-}" ]; then
  for candidate in \
      "${TEST_SRCDIR:-/nonexistent}/portserver/app/portserver" \
      "$here/../app/portserver" \
      "$here/../bazel-bin/app/portserver"; do
    if [ -f "$candidate" ] && [ -x "$candidate" ]; then
      PORTSERVER_BIN="$(realpath "$candidate")"
      break
    fi
  done
fi
if [ -z "${PORTSERVER_BIN:-}" ]; then
  echo "bindable_test.sh: cannot find the portserver binary; set PORTSERVER_BIN" >&2
  exit 1
fi
export PORTSERVER_BIN
export XDG_RUNTIME_DIR="${TEST_TMPDIR:-$(mktemp -d)}"
exec unshare -n sh -c 'ip link set lo up && exec /usr/bin/python3 "$0" "$@"' \
  "$here/bindable_test.py" "$@"
