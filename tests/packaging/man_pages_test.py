"""The man pages against the binaries they document: every flag that
`BINARY --help` prints has an entry under OPTIONS, and every entry there is
in --help (read at test time, so a flag added later fails the test until
its page says it). Each page has the conventional sections and passes
`man --warnings` as lintian runs it.

  man_pages_test.py --page=PAGE.1=BINARY ... [unittest args]
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import junit_runner  # noqa: E402

PAGES = []  # (page path, binary path)
ARGV = [sys.argv[0]]
for _arg in sys.argv[1:]:
    if _arg.startswith('--page='):
        page, _, binary = _arg[len('--page='):].partition('=')
        PAGES.append((os.path.abspath(page), os.path.abspath(binary)))
    else:
        ARGV.append(_arg)

SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'ENVIRONMENT',
            'FILES', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']
# -x or --xyz, not inside a word (e.g. not the "-lock-" of a name).
FLAG = re.compile(r'(?<![\w\-])(--?[A-Za-z][\w\-]*)')


def help_flags(binary):
    done = subprocess.run([binary, '--help'], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    if done.returncode != 0:
        raise AssertionError('%s --help exited %d: %s' % (
            binary, done.returncode, done.stderr.decode(errors='replace')))
    text = done.stdout.decode()
    # Flag names only: a trailing '-' or '=' is punctuation. --help itself
    # counts: it just printed this text.
    return {f.rstrip('-') for f in FLAG.findall(text)} | {'--help'}, text


def deroff(line):
    """Roff source line -> plain text: escapes of fonts and dashes."""
    line = re.sub(r'\\f(\[[^\]]*\]|\(..|.)', '', line)
    line = line.replace('\\-', '-').replace('\\e', '\\').replace('\\ ', ' ')
    line = re.sub(r'^\.(B|I|BI|IB|BR|RB|IR|RI)\s+', '', line)
    return line.replace('"', '')


def sections(page):
    """{section name: [source lines]}."""
    out, current = {}, None
    with open(page) as f:
        for line in f.read().splitlines():
            m = re.match(r'^\.SH\s+"?([^"]+?)"?\s*$', line)
            if m:
                current = m.group(1)
                out[current] = []
            elif current is not None:
                out[current].append(line)
    return out


def option_entries(page):
    """Flags named by the tags (the line after each .TP) under OPTIONS."""
    lines = sections(page).get('OPTIONS', [])
    flags = set()
    for i, line in enumerate(lines):
        if line.startswith('.TP') and i + 1 < len(lines):
            flags.update(f.rstrip('-') for f in FLAG.findall(deroff(lines[i + 1])))
    return flags


class ManPagesTest(unittest.TestCase):

    def test_pages_were_given(self):
        self.assertTrue(PAGES)

    def test_every_help_flag_is_documented_and_no_other(self):
        for page, binary in PAGES:
            documented = option_entries(page)
            printed, text = help_flags(binary)
            self.assertTrue(printed, '%s --help names no flag' % binary)
            name = os.path.basename(page)
            self.assertEqual(
                sorted(printed - documented), [],
                '%s: flags in `%s --help` without an entry under OPTIONS'
                % (name, os.path.basename(binary)))
            self.assertEqual(
                sorted(documented - printed), [],
                '%s: OPTIONS entries that `%s --help` does not print:\n%s'
                % (name, os.path.basename(binary), text))

    def test_conventional_sections_in_order(self):
        for page, _ in PAGES:
            found = [s for s in sections(page) if s in SECTIONS]
            self.assertEqual(found, SECTIONS, page)

    def test_man_reports_no_warnings(self):
        man = shutil.which('man')
        if man is None:
            self.skipTest('man (man-db) is not installed')
        env = dict(os.environ, LC_ALL='C.UTF-8', MANROFFSEQ='', MANWIDTH='80')
        for page, _ in PAGES:
            # As lintian's manpages check runs it.
            done = subprocess.run(
                [man, '--warnings', '-E', 'UTF-8', '-l', '-Tutf8', '-Z', page],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                timeout=60)
            self.assertEqual(done.returncode, 0, page)
            self.assertEqual(done.stderr.decode(errors='replace'), '', page)


if __name__ == '__main__':
    junit_runner.main('man_pages_test', ARGV)
