"""Runs a python unittest module for Bazel: one JUnit <testcase> per test.

Bazel writes a single test case for a target whose test does not write
$XML_OUTPUT_FILE itself; .ci/run counts test cases from those files. Usage,
at the end of a test module:

    if __name__ == '__main__':
        junit_runner.main('compat_test', argv)
"""
import os
import sys
import unittest
import xml.etree.ElementTree as ET


def write_junit_xml(path, suite_name, started, result):
    outcome = {}
    for kind, entries in (('failure', result.failures),
                          ('error', result.errors),
                          ('skipped', result.skipped)):
        for test, text in entries:
            outcome[test.id()] = (kind, text)
    suite = ET.Element('testsuite', name=suite_name, tests=str(len(started)),
                       failures=str(len(result.failures)),
                       errors=str(len(result.errors)))
    for test in started:
        cls, _, name = test.id().rpartition('.')
        case = ET.SubElement(suite, 'testcase', classname=cls, name=name)
        if test.id() in outcome:
            kind, text = outcome[test.id()]
            ET.SubElement(case, kind, message=text.splitlines()[-1]
                          if text else kind).text = text
    root = ET.Element('testsuites')
    root.append(suite)
    ET.ElementTree(root).write(path, encoding='utf-8', xml_declaration=True)


def main(suite_name, argv):
    """unittest.main on __main__ with `argv`; exits 1 on failure or no test."""
    started = []

    class _Recording(unittest.TextTestResult):
        def startTest(self, test):
            started.append(test)
            super().startTest(test)

    program = unittest.main(
        module='__main__', argv=argv, verbosity=2, exit=False,
        testRunner=unittest.TextTestRunner(verbosity=2,
                                           resultclass=_Recording))
    result = program.result
    xml_path = os.environ.get('XML_OUTPUT_FILE')
    if xml_path:
        write_junit_xml(xml_path, suite_name, started, result)
    sys.exit(0 if result.wasSuccessful() and result.testsRun else 1)
