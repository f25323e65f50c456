#!/bin/sh
# Runs lintian on //packaging:deb, as Debian's archive would: any tag that
# the package's own overrides (packaging/debian/lintian-overrides, each
# with its reason) do not cover fails the test, down to pedantic ones.
#   lintian_test.sh DEB [TAG,TAG...]
# The optional TAGs are suppressed: BUILD passes those that a sanitizer
# build causes and a release build must not have.
set -eu
deb="$1"
suppress="${2:-}"
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
  ${suppress:+--suppress-tags "$suppress"} "$deb" >"$out" 2>&1 || status=$?
grep -v 'running with root privileges is not recommended' "$out" || true
if [ -n "$suppress" ]; then
  # lintian always shows unused-override, even when suppressed: drop it
  # here, and judge by the count of the other tags alone.
  tags=$(grep -E '^[EWIPX]: ' "$out" | grep -vcE '^I: [^ ]+ unused-override ' || true)
  [ "$status" -eq 2 ] && status=0
else
  tags=$(grep -cE '^[EWIPX]: ' "$out" || true)
fi
echo "lintian: exit $status, $tags tag(s) not overridden"
[ "$status" -eq 0 ] && [ "$tags" -eq 0 ]
