"""Counts test cases from bazel-testlogs, for .ci/run.

Usage: count_results.py MARKER (TESTLOGS LABELS_FILE | --summary LOG)...
  MARKER       a file created before the test runs: older results are stale.
  TESTLOGS     a bazel-testlogs directory.
  LABELS_FILE  the test targets that should have results there, one a line.
  LOG          a log whose last "N passed, M failed" line counts as is
               (.ci/fuzz.sh's); a missing log or line counts as one failure.
For each target, every fresh test.xml counts: the target's own and those of
repeated runs (run_K_of_N/). Prints "tests: N passed, M failed" as its last
line; exits 1 if M > 0 or nothing passed.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def count(xml_path):
    root = ET.parse(xml_path).getroot()
    passed = failed = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("status") == "notrun" or case.find("skipped") is not None:
            continue
        else:
            passed += 1
    return passed, failed


def results_of(testlogs, label, since):
    package, _, name = label.lstrip("@").lstrip("/").partition(":")
    target_dir = os.path.join(testlogs, package, name)
    candidates = [os.path.join(target_dir, "test.xml")]
    candidates += glob.glob(os.path.join(target_dir, "run_*_of_*", "test.xml"))
    return [p for p in candidates
            if os.path.exists(p) and os.path.getmtime(p) >= since]


def summary_of(log):
    """(passed, failed) from the last "N passed, M failed" line of `log`."""
    try:
        with open(log, errors="replace") as f:
            found = re.findall(r"(\d+) passed, (\d+) failed", f.read())
    except OSError:
        found = []
    if not found:
        print(f"no 'N passed, M failed' line in {log}: counted as failed")
        return 0, 1
    return int(found[-1][0]), int(found[-1][1])


def main(argv):
    since = os.path.getmtime(argv[1])
    pairs = argv[2:]
    if not pairs or len(pairs) % 2:
        print("usage: count_results.py MARKER (TESTLOGS LABELS_FILE)...")
        return 2
    passed = failed = 0
    for testlogs, labels_file in zip(pairs[::2], pairs[1::2]):
        if testlogs == "--summary":
            p, f = summary_of(labels_file)
            passed += p
            failed += f
            continue
        with open(labels_file) as f:
            labels = f.read().split()
        if not labels:
            print(f"no test targets listed in {labels_file}: counted as failed")
            failed += 1
        for label in labels:
            paths = results_of(testlogs, label, since)
            if not paths:
                print(f"no fresh results for {label}: counted as failed")
                failed += 1
            for path in paths:
                try:
                    p, f = count(path)
                except ET.ParseError as error:
                    print(f"unreadable {path} ({error}): counted as failed")
                    p, f = 0, 1
                if p + f == 0:
                    print(f"no test cases in {path}: counted as failed")
                    f = 1
                passed += p
                failed += f
    print(f"tests: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
