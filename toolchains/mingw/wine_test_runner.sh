#!/usr/bin/env bash
# wine_test_runner: runs one Windows test program under wine. Bazel calls it
# for every test under --config=mingw (`test:mingw --run_under=...` in
# .bazelrc) as `wine_test_runner.sh PROGRAM ARGS...` in the test's runfiles
# directory; a program that is not a Windows .exe (an sh_test's script) runs
# as is.
#
# Each test gets a wine prefix of its own in $TEST_TMPDIR: tests run in
# parallel in separate sandboxes, and a prefix (hence a wineserver) shared
# between them lets one test reach another sandbox's server. A full prefix
# costs ~7 s and 700 MB, so a template prefix is made once per host and wine
# version (under flock) and each test gets a light copy: its registry files
# and small directories, with drive_c/windows a symlink to the template's.
#
# Environment: PORTSERVER_WINE_TEMPLATE overrides the template's directory
# (default /tmp/portserver-wine-<uid>/<wine version>).
set -euo pipefail

program=$1
shift
case "$program" in
  *.exe) ;;
  *) exec "$program" "$@" ;;
esac

export WINEDEBUG=-all
# A UTF-8 locale, so that wine can make files of any name, as NTFS can
# (Bazel runs tests without LANG; in the C locale wine refuses non-ASCII
# file names). The ANSI code page wine gives programs stays 1252.
export LC_ALL=C.UTF-8
# No crash dialog or winedbg dump for a crashing test (it exits non-zero),
# and no offer to install Mono or Gecko.
export WINEDLLOVERRIDES="winedbg.exe=d;mscoree=;mshtml="

tmp=${TEST_TMPDIR:-$(mktemp -d)}
template=${PORTSERVER_WINE_TEMPLATE:-/tmp/portserver-wine-$(id -u)/$(wine --version | tr -c 'A-Za-z0-9.\n-' _)}

make_template() {
  mkdir -p "$template.tmp"
  # A prefix is refused unless its owner is the user running wine.
  rm -rf "$template.tmp/prefix"
  WINEPREFIX="$template.tmp/prefix" wineboot --init >/dev/null 2>&1 </dev/null
  WINEPREFIX="$template.tmp/prefix" wineserver --wait
  mv "$template.tmp/prefix" "$template"
  rmdir "$template.tmp" 2>/dev/null || true
}

if [ ! -d "$template" ]; then
  mkdir -p "$(dirname "$template")"
  (
    flock 9
    [ -d "$template" ] || make_template
  ) 9>"$template.lock"
fi

# The light prefix: own registry (wine writes it), shared read-mostly files.
prefix=$tmp/wineprefix
rm -rf "$prefix"
mkdir -p "$prefix/drive_c" "$prefix/dosdevices"
cp -p "$template"/*.reg "$prefix/"
[ -e "$template/.update-timestamp" ] && cp -p "$template/.update-timestamp" "$prefix/"
for entry in "$template"/drive_c/*; do
  name=$(basename "$entry")
  case "$name" in
    windows) ln -s "$entry" "$prefix/drive_c/$name" ;;
    *) cp -a "$entry" "$prefix/drive_c/$name" ;;
  esac
done
ln -s ../drive_c "$prefix/dosdevices/c:"
ln -s / "$prefix/dosdevices/z:"
# R: is the runfiles directory (the working directory), so that the test
# sees itself as R:\<package>\<name>.exe: under the sandbox the Z: path is
# longer than MAX_PATH (260), and CreateProcess on it fails.
ln -s "$PWD" "$prefix/dosdevices/r:"
export WINEPREFIX=$prefix

# gtest reads XML_OUTPUT_FILE as a Windows path: /a/b is relative there.
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  export XML_OUTPUT_FILE="Z:$XML_OUTPUT_FILE"
fi

# One wineserver for the test, stopped after it even if services linger
# (they may hold the test's stdout and stderr open).
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
wineserver -p
status=0
wine "$program" "$@" || status=$?
exit "$status"
