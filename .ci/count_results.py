"""Counts test cases from bazel-testlogs, for .ci/run.

stdin: test target labels, one per line. argv: a marker file created before
the test run (results older than it are stale) and the testlogs directory.
Prints "tests: N passed, M failed" as its last line; exits 1 if M > 0 or
nothing ran.
"""
import os
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


def main():
    marker, testlogs = sys.argv[1], sys.argv[2]
    since = os.path.getmtime(marker)
    passed = failed = 0
    for label in sys.stdin.read().split():
        package, _, name = label.lstrip("/").partition(":")
        xml_path = os.path.join(testlogs, package, name, "test.xml")
        if not os.path.exists(xml_path) or os.path.getmtime(xml_path) < since:
            print(f"no fresh results for {label}: counted as failed")
            failed += 1
            continue
        try:
            p, f = count(xml_path)
        except ET.ParseError as error:
            print(f"unreadable results for {label} ({error}): counted as failed")
            p, f = 0, 1
        if p + f == 0:
            print(f"no test cases in results for {label}: counted as failed")
            f = 1
        passed += p
        failed += f
    print(f"tests: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
