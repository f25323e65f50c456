#!/bin/sh
# Wrapper of the robustness tests: runs the python test given as $1 with
# Debian's /usr/bin/python3; the other arguments (--portserver_bin=PATH,
# unittest options) go to the test. Bazel passes both through `args`.
#
# By hand, from the workspace root after `bazel build //app:portserver`:
#   sh tests/robustness/run_test.sh tests/robustness/stress_test.py \
#       --portserver_bin=bazel-bin/app/portserver [-v] [Class.test]
set -eu
script="$1"
shift
# Hermetic: servers started without --portserver_state_file keep their
# default journal under the test's own tmpdir. They also look for it in
# /tmp/portserver-<uid> (a journal of the same address from a start without
# XDG_RUNTIME_DIR): test addresses are unique to each run
# (tests/testlib.py), and the tests that write there leave nothing behind
# when they pass.
export XDG_RUNTIME_DIR="${TEST_TMPDIR:-$(mktemp -d)}"
exec /usr/bin/python3 "$script" "$@"
