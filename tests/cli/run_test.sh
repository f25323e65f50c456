#!/bin/sh
# Runs the python test given as $1 with Debian's /usr/bin/python3 (a python3
# on PATH may be a shim); the other arguments go to the test.
#   sh tests/cli/run_test.sh tests/cli/version_and_signals_test.py \
#       --portserver_bin=bazel-bin/app/portserver --version_bzl=version.bzl
set -eu
script="$1"
shift
exec /usr/bin/python3 "$script" "$@"
