#!/bin/sh
# Wrapper for //tests:compat_test: finds the //app:portserver binary and the
# Python test next to this script, then runs the test with Debian's python3
# (which has the real `portpicker` client module; a `python3` from PATH may be
# a pyenv shim without it).
#
# By hand (from the workspace root, after `bazel build //app:portserver`):
#   PORTSERVER_BIN=bazel-bin/app/portserver sh tests/compat_test.sh [-v] [Class.test]
set -eu

here="$(dirname "$0")"

if [ -z "${PORTSERVER_BIN:-}" ]; then
  for candidate in \
      "${TEST_SRCDIR:-/nonexistent}/portserver/app/portserver" \
      "${RUNFILES_DIR:-/nonexistent}/portserver/app/portserver" \
      "$0.runfiles/portserver/app/portserver" \
      "$here/../app/portserver"; do
    if [ -f "$candidate" ] && [ -x "$candidate" ]; then
      PORTSERVER_BIN="$candidate"
      break
    fi
  done
fi
if [ -z "${PORTSERVER_BIN:-}" ]; then
  echo "compat_test.sh: cannot find the portserver binary; set PORTSERVER_BIN" >&2
  exit 1
fi
export PORTSERVER_BIN

script=""
for candidate in \
    "$here/compat_test.py" \
    "${TEST_SRCDIR:-/nonexistent}/portserver/tests/compat_test.py" \
    "$0.runfiles/portserver/tests/compat_test.py"; do
  if [ -f "$candidate" ]; then
    script="$candidate"
    break
  fi
done
if [ -z "$script" ]; then
  echo "compat_test.sh: cannot find compat_test.py" >&2
  exit 1
fi

# The servers keep their default lease journal under the test's own tmpdir.
export XDG_RUNTIME_DIR="${TEST_TMPDIR:-$(mktemp -d)}"
exec /usr/bin/python3 "$script" "$@"
