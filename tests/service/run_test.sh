#!/bin/sh
# Wrapper of the service tests: runs the python test given as $1 with
# Debian's /usr/bin/python3 (which has python3-portpicker); the other
# arguments (--portserver_bin=PATH, unittest options) go to the test.
#
# By hand, from the workspace root after `bazel build //app:portserver`:
#   sh tests/service/run_test.sh tests/service/activation_test.py \
#       --portserver_bin=bazel-bin/app/portserver [-v] [Class.test]
set -eu
script="$1"
shift
exec /usr/bin/python3 "$script" "$@"
