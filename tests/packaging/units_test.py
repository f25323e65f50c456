"""The systemd units: `systemd-analyze verify` accepts them, the service is
hardened, and each hardening option it does not set is named in a comment
saying why.

  units_test.py --units_dir=DIR [unittest args]
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import junit_runner  # noqa: E402

UNITS = None
ARGV = [sys.argv[0]]
for _arg in sys.argv[1:]:
    if _arg.startswith('--units_dir='):
        UNITS = os.path.abspath(_arg.split('=', 1)[1])
    else:
        ARGV.append(_arg)

# The sandboxing options of systemd.exec(5) that a daemon like this one
# should consider; each is set or explained.
HARDENING = [
    'NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp',
    'PrivateDevices', 'PrivateNetwork', 'PrivateUsers', 'PrivateIPC',
    'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs',
    'ProtectControlGroups', 'ProtectClock', 'ProtectHostname', 'ProtectProc',
    'ProcSubset', 'RestrictNamespaces', 'RestrictRealtime',
    'RestrictSUIDSGID', 'RestrictAddressFamilies', 'LockPersonality',
    'MemoryDenyWriteExecute', 'RemoveIPC', 'SystemCallFilter',
    'SystemCallArchitectures', 'CapabilityBoundingSet', 'DynamicUser',
    'User', 'StateDirectory', 'RuntimeDirectory', 'IPAddressDeny', 'UMask',
]


def read(name):
    with open(os.path.join(UNITS, name)) as f:
        return f.read()


def settings(text):
    return {m.group(1): m.group(2) for m in
            re.finditer(r'(?m)^([A-Za-z]+)=(.*)$', text)}


class UnitsTest(unittest.TestCase):

    def test_systemd_analyze_verify(self):
        tool = shutil.which('systemd-analyze')
        if tool is None:
            self.skipTest('systemd-analyze is not installed')
        done = subprocess.run(
            [tool, 'verify', os.path.join(UNITS, 'portserver.socket'),
             os.path.join(UNITS, 'portserver.service')],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        output = done.stdout.decode(errors='replace')
        # Without a running systemd, verify may note that it cannot reach
        # the manager; anything about our units is a failure.
        ours = [l for l in output.splitlines() if 'portserver' in l]
        self.assertEqual(ours, [], output)
        self.assertEqual(done.returncode, 0, output)

    def test_socket_listens_on_abstract_and_path_for_one_service(self):
        socket = settings(read('portserver.socket'))
        listens = re.findall(r'(?m)^ListenStream=(.+)$',
                             read('portserver.socket'))
        self.assertEqual(listens, ['@unittest-portserver',
                                   '/run/portserver/portserver.sock'])
        self.assertEqual(socket.get('Accept', 'no'), 'no')
        self.assertEqual(socket['WantedBy'], 'sockets.target')

    def test_every_hardening_option_is_set_or_explained(self):
        text = read('portserver.service')
        set_here = settings(text)
        comments = '\n'.join(l for l in text.splitlines()
                             if l.lstrip().startswith('#'))
        unexplained = [o for o in HARDENING
                       if o not in set_here and
                       not re.search(r'\b%s\b' % o, comments)]
        self.assertEqual(unexplained, [])
        for option, value in [('NoNewPrivileges', 'yes'),
                              ('ProtectSystem', 'strict'),
                              ('ProtectHome', 'yes'), ('PrivateTmp', 'yes'),
                              ('StateDirectory', 'portserver')]:
            self.assertEqual(set_here.get(option), value, option)
        # Not set: they would break it (see the comments).
        for option in ('ProtectProc', 'PrivateNetwork', 'PrivateUsers',
                       'DynamicUser', 'RuntimeDirectory'):
            self.assertNotIn(option, set_here)

    def test_journal_is_in_the_state_directory(self):
        service = settings(read('portserver.service'))
        self.assertIn('--portserver_state_file=/var/lib/%s/'
                      % service['StateDirectory'], service['ExecStart'])


if __name__ == '__main__':
    if not UNITS:
        sys.exit('usage: units_test.py --units_dir=DIR')
    junit_runner.main('units_test', ARGV)
