"""Checks the contents and metadata of //packaging:deb with Debian's own
tools (dpkg-deb -c, -I, -f, -x), not by reading the archive ourselves.

  deb_test.py --deb=PATH --version=V --man_dir=DIR --units_dir=DIR [unittest args]
"""
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = {}
ARGV = [sys.argv[0]]
for _arg in sys.argv[1:]:
    m = re.match(r'--(deb|version|man_dir|units_dir)=(.*)$', _arg)
    if m:
        ARGS[m.group(1)] = os.path.abspath(m.group(2)) \
            if m.group(1) != 'version' else m.group(2)
    else:
        ARGV.append(_arg)
import junit_runner  # noqa: E402

DEB = ARGS.get('deb')
VERSION = ARGS.get('version')

# path -> mode, for every file the package must ship.
EXPECTED_FILES = {
    './usr/bin/portserver': 0o755,
    './usr/bin/portpicker': 0o755,
    './usr/bin/portserverctl': 0o755,
    './usr/share/man/man1/portserver.1.gz': 0o644,
    './usr/share/man/man1/portpicker.1.gz': 0o644,
    './usr/share/man/man1/portserverctl.1.gz': 0o644,
    './lib/systemd/system/portserver.socket': 0o644,
    './lib/systemd/system/portserver.service': 0o644,
    './etc/default/portserver': 0o644,
    './usr/share/doc/portserver/copyright': 0o644,
    './usr/share/doc/portserver/changelog.gz': 0o644,
    './usr/share/lintian/overrides/portserver': 0o644,
}


def run(*argv):
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False)
    if done.returncode != 0:
        raise AssertionError('%r failed (%d): %s' % (
            argv, done.returncode, done.stderr.decode(errors='replace')))
    return done.stdout.decode('utf-8', 'replace')


def mode_of(perms):
    """'-rwxr-xr-x' -> 0o755."""
    mode = 0
    for i, c in enumerate(perms[1:10]):
        if c != '-':
            mode |= 1 << (8 - i)
    return mode


class DebTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp()
        run('dpkg-deb', '-x', DEB, cls.root)
        cls.control = os.path.join(cls.root, 'DEBIAN')
        run('dpkg-deb', '-e', DEB, cls.control)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def field(self, name):
        return run('dpkg-deb', '-f', DEB, name).strip()

    def test_file_name_and_version_come_from_version_bzl(self):
        self.assertEqual(os.path.basename(DEB),
                         'portserver_%s_amd64.deb' % VERSION)
        self.assertEqual(self.field('Package'), 'portserver')
        self.assertEqual(self.field('Version'), VERSION)
        self.assertEqual(self.field('Architecture'), 'amd64')
        with gzip.open(os.path.join(
                self.root, 'usr/share/doc/portserver/changelog.gz'), 'rt') as f:
            top = f.readline()
        self.assertEqual(top.split()[:2], ['portserver', '(%s)' % VERSION])

    def test_contents_owners_and_modes(self):
        listing = run('dpkg-deb', '-c', DEB)
        files = {}
        for line in listing.splitlines():
            perms, owner, _size, _date, _time, path = line.split(None, 5)
            self.assertEqual(owner, 'root/root', line)
            if perms.startswith('d'):
                self.assertEqual(mode_of(perms), 0o755, line)
            else:
                files[path] = mode_of(perms)
        self.assertEqual(files, EXPECTED_FILES)

    def test_control_fields(self):
        info = run('dpkg-deb', '-I', DEB)
        for script in ('preinst', 'postinst', 'prerm', 'postrm'):
            self.assertRegex(info, r'\*\s+%s\s' % script,
                             '%s missing or not executable' % script)
        depends = self.field('Depends')
        # The portpicker command links Debian's Abseil and libstdc++.
        for package in ('libc6', 'libstdc++6', 'libabsl20220623'):
            self.assertRegex(depends, r'(^|, )%s( |,|$)' % re.escape(package),
                             depends)
        self.assertRegex(self.field('Installed-Size'), r'^\d+$')
        self.assertTrue(self.field('Maintainer'))
        description = self.field('Description')
        self.assertIn('port server', description)
        self.assertEqual(self.field('Suggests'), 'python3-portpicker')

    def test_defaults_file_is_a_conffile(self):
        with open(os.path.join(self.control, 'conffiles')) as f:
            self.assertEqual(f.read().split(), ['/etc/default/portserver'])
        with open(os.path.join(self.root, 'etc/default/portserver')) as f:
            self.assertRegex(f.read(), r'(?m)^PORTSERVER_OPTS=')
        with open(os.path.join(self.root,
                               'lib/systemd/system/portserver.service')) as f:
            unit = f.read()
        self.assertIn('EnvironmentFile=-/etc/default/portserver', unit)
        self.assertRegex(unit, r'(?m)^ExecStart=/usr/bin/portserver .*'
                               r'\$PORTSERVER_OPTS$')

    def test_md5sums_match_the_files(self):
        with open(os.path.join(self.control, 'md5sums')) as f:
            sums = dict(reversed(line.split(None, 1)) for line in
                        f.read().splitlines())
        sums = {path.strip(): digest for path, digest in sums.items()}
        self.assertEqual(set('./' + p for p in sums), set(EXPECTED_FILES))
        for path, digest in sums.items():
            with open(os.path.join(self.root, path), 'rb') as f:
                self.assertEqual(hashlib.md5(f.read()).hexdigest(), digest,
                                 path)

    def test_binaries_run_and_are_stripped(self):
        server = os.path.join(self.root, 'usr/bin/portserver')
        self.assertIn('usage: portserver', run(server, '--help'))
        picker = os.path.join(self.root, 'usr/bin/portpicker')
        self.assertIn('usage: portpicker', run(picker, '--help'))
        ctl = os.path.join(self.root, 'usr/bin/portserverctl')
        self.assertIn('usage: portserverctl', run(ctl, '--help'))
        for binary in (server, picker, ctl):
            self.assertNotIn('.symtab', run('readelf', '-S', binary), binary)

    def test_man_pages_are_the_sources_compressed_reproducibly(self):
        for name in ('portserver.1', 'portpicker.1', 'portserverctl.1'):
            packed = os.path.join(self.root, 'usr/share/man/man1',
                                  name + '.gz')
            with open(packed, 'rb') as f:
                header = f.read(10)
            # gzip -n: no name, no timestamp.
            self.assertEqual(header[3] & 0x08, 0, name)
            self.assertEqual(header[4:8], b'\0\0\0\0', name)
            with gzip.open(packed, 'rb') as f, \
                    open(os.path.join(ARGS['man_dir'], name), 'rb') as src:
                self.assertEqual(f.read(), src.read(), name)

    def test_units_are_the_sources(self):
        for name in ('portserver.socket', 'portserver.service'):
            with open(os.path.join(self.root, 'lib/systemd/system', name),
                      'rb') as packed, \
                    open(os.path.join(ARGS['units_dir'], name), 'rb') as src:
                self.assertEqual(packed.read(), src.read(), name)

    def test_python_server_is_diverted_and_given_back(self):
        with open(os.path.join(self.control, 'preinst')) as f:
            preinst = f.read()
        with open(os.path.join(self.control, 'postrm')) as f:
            postrm = f.read()
        for path in ('/usr/bin/portserver',
                     '/usr/share/man/man1/portserver.1.gz'):
            self.assertIn(path, preinst)
            self.assertIn(path, postrm)
        self.assertIn('--add', preinst)
        self.assertIn('--remove', postrm)
        self.assertIn('--package portserver', preinst)
        for script in ('preinst', 'postinst', 'prerm', 'postrm'):
            run('sh', '-n', os.path.join(self.control, script))

    def test_socket_unit_is_enabled_only_through_deb_systemd_helper(self):
        with open(os.path.join(self.control, 'postinst')) as f:
            postinst = f.read()
        self.assertIn('deb-systemd-helper enable portserver.socket', postinst)
        # Starting needs a running systemd; containers often have none.
        start = postinst.index('deb-systemd-invoke start')
        self.assertGreater(start, postinst.index('[ -d /run/systemd/system ]'))


if __name__ == '__main__':
    for key in ('deb', 'version', 'man_dir', 'units_dir'):
        if key not in ARGS:
            sys.exit('usage: deb_test.py --deb=PATH --version=V --man_dir=DIR '
                     '--units_dir=DIR')
    junit_runner.main('deb_test', ARGV)
