#!/usr/bin/env bash
# The purity checker must fail on a header that includes an OS header, Abseil
# and an adapter, and on deps that leave //domain, naming each; and must not
# flag a standard header.
set -u
dir="$(dirname "$0")"
out=$(/usr/bin/python3 "$dir/domain_purity_check.py" \
  --deps "$dir/testdata/impure_domain_deps.txt" "$dir/testdata/impure_domain.h")
status=$?
echo "$out"
if [ "$status" -eq 0 ]; then
  echo "FAIL: the checker accepted an impure domain"
  exit 1
fi
for expected in '<sys/socket.h>' '"absl/status/status.h"' \
    '"adapters/linux/linux_port_probe.h"' '//adapters/linux:linux_port_probe' \
    '@system_libs//:absl'; do
  if ! grep -qF -- "$expected" <<<"$out"; then
    echo "FAIL: the checker did not report $expected"
    exit 1
  fi
done
if grep -qF '<vector>' <<<"$out" || grep -qF '//domain:ledger ' <<<"$out"; then
  echo "FAIL: the checker flagged something allowed"
  exit 1
fi
echo "PASS"
