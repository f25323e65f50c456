#!/usr/bin/env bash
# Builds the libFuzzer targets of //fuzz (--config=fuzz: clang 14, ASan,
# UBSan) and runs each for a bounded time on a copy of its seed corpus
# fuzz/corpus/<fuzzer>/ (the checked-in corpus is never written to). Prints,
# per fuzzer, the runs executed, the coverage reached and the crashes, then
# one line "fuzz: N passed, M failed"; exits non-zero if any fuzzer crashed
# (or could not be built or run).
#
# Environment:
#   FUZZ_SECONDS    time per fuzzer, default 30
#   FUZZERS         which fuzzers, default every fuzz/corpus/<fuzzer>/
#   FUZZ_ARTIFACTS  where a failing fuzzer's crash inputs and log are kept,
#                   default a new directory under ${TMPDIR:-/tmp}
#   BAZEL           the bazel command, default ./bazelw (may carry startup
#                   options: BAZEL="bazel --output_base=/tmp/ob")
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-30}
read -r -a bazel <<<"${BAZEL:-$root/bazelw}"
if [ -n "${FUZZERS:-}" ]; then
  read -r -a fuzzers <<<"$FUZZERS"
else
  fuzzers=()
  for dir in fuzz/corpus/*/; do
    fuzzers+=("$(basename "$dir")")
  done
fi
if ((${#fuzzers[@]} == 0)); then
  echo "fuzz: no fuzzers found under fuzz/corpus/" >&2
  echo "fuzz: 0 passed, 1 failed"
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/portserver-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --symlink_prefix=/: leave bazel-bin and bazel-testlogs pointing at the
# default build (.ci/run counts test results through them).
targets=("${fuzzers[@]/#/\/\/fuzz:}")
echo "=== building ${targets[*]} (--config=fuzz)"
if ! "${bazel[@]}" build --config=fuzz --symlink_prefix=/ "${targets[@]}"; then
  echo "fuzz: build failed"
  echo "fuzz: 0 passed, ${#fuzzers[@]} failed"
  exit 1
fi
bin=$("${bazel[@]}" info --config=fuzz bazel-bin 2>/dev/null)

passed=0
failed=0
keep=""
for f in "${fuzzers[@]}"; do
  dir=$work/$f
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -R "fuzz/corpus/$f/." "$dir/corpus/"
  seeds=$(find "$dir/corpus" -type f | wc -l)
  echo "=== $f: ${seeds} seeds, ${seconds} s"
  # -close_fd_mask=1: the targets print nothing worth keeping on stdout.
  (cd "$dir" && ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin/fuzz/$f" -max_total_time="$seconds" -print_final_stats=1 \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/artifacts/" \
      "$dir/corpus" >"$dir/log" 2>&1)
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$dir/log" | tail -1)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  [ "${speed:-0}" = 0 ] && speed="?"  # libFuzzer says 0 under 1 s.
  echo "$f: ${runs:-?} runs (${speed}/s), ${cov:-cov: ?}, corpus ${seeds} -> ${corpus} inputs, crashes ${crashes}, exit ${status}"
  if [ "$status" -eq 0 ] && [ "$crashes" -eq 0 ] && [ -n "$runs" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    if [ -z "$keep" ]; then
      keep=${FUZZ_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/portserver-fuzz-failures.XXXXXX")}
    fi
    mkdir -p "$keep/$f"
    cp -R "$dir/artifacts/." "$dir/log" "$keep/$f/"
    grep -E 'FUZZ_CHECK|ERROR: |runtime error|SUMMARY' "$dir/log" | head -5 | sed 's/^/  /'
    echo "  $f FAILED: log and inputs kept in $keep/$f; reproduce with"
    for crash in "$keep/$f"/*; do
      [ "$(basename "$crash")" = log ] && continue
      echo "    $bin/fuzz/$f $crash"
    done
  fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
