#!/bin/sh
# Wrapper of the packaging tests: runs the python test given as $1 with
# Debian's /usr/bin/python3; the other arguments go to the test.
#
# By hand, from the workspace root after `bazel build //packaging:deb`:
#   sh tests/packaging/run_test.sh tests/packaging/man_pages_test.py \
#       --page=packaging/man/portserver.1=bazel-bin/app/portserver
set -eu
script="$1"
shift
exec /usr/bin/python3 "$script" "$@"
