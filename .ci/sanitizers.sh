#!/usr/bin/env bash
# Runs the test suite under AddressSanitizer (leaks included) and
# UndefinedBehaviorSanitizer: ./bazelw test --config=asan_ubsan (clang 14,
# see .bazelrc), and exits non-zero if any test fails.
#
# Tests that bound the server's memory growth (listed below) cannot pass
# with ASan's quarantine, which keeps up to 256 MB of freed memory to catch
# use-after-free; they run in a second invocation with the quarantine off
# (overflows, leaks and UB are still caught there). That run also unwinds
# malloc stacks with the DWARF unwinder (fast_unwind_on_malloc=0): the
# default frame-pointer unwinder reads garbage frames through code built
# without frame pointers (Debian's libabsl, libstdc++), every garbage trace
# is a new entry in ASan's stack depot, and the depot's memory then grows by
# about 1 MB per 20,000 requests while the heap stays flat (measured at
# 0e48aa4: +1000, +1032, +1004 kB per window; with the DWARF unwinder +156,
# with malloc_context_size=2 +88). The DWARF unwinder also gives the true
# stacks in reports, at a cost in speed.
#
# Arguments: extra `bazel test` flags for both invocations (.ci/run passes
# --nocache_test_results).
#
# Environment:
#   SANITIZER_CONFIG  the .bazelrc config, default asan_ubsan
#   BAZEL             the bazel command, default ./bazelw (may carry startup
#                     options: BAZEL="bazel --output_base=/tmp/ob")
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

config=${SANITIZER_CONFIG:-asan_ubsan}
read -r -a bazel <<<"${BAZEL:-$root/bazelw}"
memory_bound_tests=(//tests/robustness:stress_test)
no_quarantine=detect_leaks=1:abort_on_error=1:quarantine_size_mb=0:thread_local_quarantine_size_kb=0:fast_unwind_on_malloc=0

# //..., spelled out as one pattern per top-level directory: Bazel 4 walks
# into bazel-* links left by another output base (bazel#13951), and
# --symlink_prefix=/ below means this run does not own them.
patterns=(//:all)
for dir in */; do
  dir=${dir%/}
  [ -L "$dir" ] && continue
  grep -qxF "$dir" .bazelignore 2>/dev/null && continue
  [ -n "$(find "$dir" \( -name BUILD -o -name BUILD.bazel \) -print -quit)" ] || continue
  patterns+=("//$dir/...")
done
excluded=("${memory_bound_tests[@]/#/-}")

# --symlink_prefix=/: leave bazel-bin and bazel-testlogs pointing at the
# default build (.ci/run counts test results through them).
echo "=== sanitizers ($config): ${patterns[*]} ${excluded[*]}"
"${bazel[@]}" test --config="$config" --symlink_prefix=/ "$@" -- \
  "${patterns[@]}" "${excluded[@]}"
main_status=$?

echo "=== sanitizers ($config, ASan quarantine off): ${memory_bound_tests[*]}"
"${bazel[@]}" test --config="$config" --symlink_prefix=/ "$@" \
  --test_env=ASAN_OPTIONS="$no_quarantine" -- "${memory_bound_tests[@]}"
bound_status=$?

if [ "$main_status" -eq 0 ] && [ "$bound_status" -eq 0 ]; then
  echo "sanitizers ($config): passed"
  exit 0
fi
echo "sanitizers ($config): FAILED (bazel exit $main_status, then $bound_status)"
# 3 is bazel's "tests failed"; keep the first failing status.
[ "$main_status" -ne 0 ] && exit "$main_status"
exit "$bound_status"
