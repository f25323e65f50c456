#!/bin/sh
# Wrapper for //tests:control_test: finds the binaries in the runfiles and
# runs tests/control_test.py with Debian's python3 (which has
# python3-prometheus-client). By hand, after `bazel build //app:portserver
# //client:portserverctl //client:portpicker_cli`:
#   PORTSERVER_BIN=bazel-bin/app/portserver \
#   PORTSERVERCTL_BIN=bazel-bin/client/portserverctl \
#   PORTPICKER_BIN=bazel-bin/client/portpicker_cli sh tests/control_test.sh
# A first argument --netns runs the suite in a network namespace of its own
# (unshare -n, loopback up; needs root), as tests/bindable_test.sh does: for
# the classes that run unsandboxed (//tests:control_permission_test), so
# that the pools they find free on loopback are not taken by others on a
# busy host before their server starts.
set -eu
netns=0
if [ "${1:-}" = "--netns" ]; then
  netns=1
  shift
fi
here="$(dirname "$0")"
find_runfile() {
  for candidate in \
      "${TEST_SRCDIR:-/nonexistent}/portserver/$1" \
      "${RUNFILES_DIR:-/nonexistent}/portserver/$1" \
      "$0.runfiles/portserver/$1" \
      "$here/../$1"; do
    if [ -f "$candidate" ]; then
      echo "$candidate"
      return
    fi
  done
  echo "control_test.sh: cannot find $1" >&2
  exit 1
}
: "${PORTSERVER_BIN:=$(find_runfile app/portserver)}"
: "${PORTSERVERCTL_BIN:=$(find_runfile client/portserverctl)}"
: "${PORTPICKER_BIN:=$(find_runfile client/portpicker_cli)}"
export PORTSERVER_BIN PORTSERVERCTL_BIN PORTPICKER_BIN
script="$(find_runfile tests/control_test.py)"
if [ "$netns" = 1 ]; then
  exec unshare -n sh -c 'ip link set lo up && exec /usr/bin/python3 "$0" "$@"' \
    "$script" "$@"
fi
exec /usr/bin/python3 "$script" "$@"
