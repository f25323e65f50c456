#!/bin/sh
# Runs lintian on //packaging:deb, as Debian's archive would: any tag that
# the package's own overrides (packaging/debian/lintian-overrides, each
# with its reason) do not cover fails the test, down to pedantic ones.
#   lintian_test.sh DEB
set -eu
deb="$1"
if ! command -v lintian >/dev/null 2>&1; then
  echo "lintian_test.sh: lintian is not installed (bazelw installs it)" >&2
  exit 1
fi
# lintian wants a writable HOME and refuses nothing as root but warns.
export HOME="${TEST_TMPDIR:-$(mktemp -d)}"
out="$HOME/lintian.out"
status=0
lintian --display-level '>=pedantic' --display-experimental --info \
  --tag-display-limit 0 --fail-on error,warning,info,pedantic \
  "$deb" >"$out" 2>&1 || status=$?
grep -v 'running with root privileges is not recommended' "$out" || true
tags=$(grep -cE '^[EWIPX]: ' "$out" || true)
echo "lintian: exit $status, $tags tag(s) not overridden"
[ "$status" -eq 0 ] && [ "$tags" -eq 0 ]
