#!/usr/bin/env bash
# Checks that the tracked C++ files are formatted as .clang-format says
# (Google style), with Debian 12's clang-format-14 (bazelw installs it).
# Prints each file that differs with the diff clang-format would apply, then
# "format: N files checked, M need formatting"; exits 1 if M > 0.
#
# Usage: bash .ci/check_format.sh [FILE...]   (default: every tracked
#   *.h, *.cc and *.cpp file). To fix a file: clang-format-14 -i FILE.
# Environment: CLANG_FORMAT, the command (default clang-format-14).
set -uo pipefail
cd "$(dirname "$0")/.."

clang_format=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$clang_format" >/dev/null; then
  echo "format: $clang_format not found (apt-get install clang-format-14, or run ./bazelw once)" >&2
  exit 2
fi

if (($#)); then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- '*.h' '*.cc' '*.cpp')
fi

checked=0
unformatted=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  checked=$((checked + 1))
  if ! diff -u --label "$f" --label "$f (clang-format)" \
      "$f" <("$clang_format" --style=file --assume-filename="$f" <"$f"); then
    unformatted=$((unformatted + 1))
  fi
done

echo "format: $checked files checked, $unformatted need formatting"
[ "$unformatted" -eq 0 ]
