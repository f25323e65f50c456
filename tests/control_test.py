#!/usr/bin/python3
"""Black-box tests of the extended protocol (docs/protocol.md) through the
built binaries: //app:portserver, //client:portserverctl and the portpicker
command (//client:portpicker_cli).

Each test starts its own server on a private abstract address with a pool of
ports the kernel just found free (bound to port 0, then released), and stops
it with SIGTERM. Leases go to `sleep` children, whose command line the server
must report. Waits are bounded reads of the server's log, never sleeps.

Binaries come from PORTSERVER_BIN, PORTSERVERCTL_BIN and PORTPICKER_BIN (set
by control_test.sh). The release test switches to other users for real, so it
needs root; //tests:control_permission_test runs it unsandboxed.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import struct
import sys
import tempfile
import termios
import textwrap
import threading
import time
import unittest
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families

import junit_runner  # tests/junit_runner.py, beside this file
from testlib import LineCollector, new_address, sockaddr

PORTSERVER_BIN = os.environ.get('PORTSERVER_BIN', '')
PORTSERVERCTL_BIN = os.environ.get('PORTSERVERCTL_BIN', '')
PORTPICKER_BIN = os.environ.get('PORTPICKER_BIN', '')

STARTUP_TIMEOUT = 20.0
RUN_TIMEOUT = 30.0
LOG_TIMEOUT = 10.0
NOBODY = 65534
DAEMON = 1  # Another user than nobody, for the refused release.


def free_ports(n):
    """n distinct ports the kernel found free just now."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.1', 0))
            sockets.append(s)
        return sorted(s.getsockname()[1] for s in sockets)
    finally:
        for s in sockets:
            s.close()


def raw_exchange(address, payload, timeout=10.0):
    """Sends payload, returns every byte until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sockaddr(address))
        s.sendall(payload)
        data = b''
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data


def become(uid):
    def switch():
        os.setgid(uid)
        os.setuid(uid)
    return switch


class Server(object):
    def __init__(self, ports, extra_args=(), wrapper=(), verbose=True):
        self.ports = ports
        self.address = new_address('control')
        self.argv = list(wrapper) + [PORTSERVER_BIN,
                     '--portserver_static_pool=' + ','.join(map(str, ports)),
                     '--portserver_address=' + self.address,
                     '--portserver_state_file=none'] + (
                         ['--verbose'] if verbose else []) + list(extra_args)
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.log = LineCollector(self.proc.stderr)
        if self.log.wait_for(lambda l: 'Serving on ' + self.address in l,
                             timeout=STARTUP_TIMEOUT) is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError('server did not start:\n' + self.log.text())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=RUN_TIMEOUT)
        self.log.join()
        return status


class ControlTestCase(unittest.TestCase):
    POOL_SIZE = 6
    EXTRA_ARGS = ()
    WRAPPER = ()  # A command the server runs under.
    VERBOSE = True

    def setUp(self):
        for name, path in (('PORTSERVER_BIN', PORTSERVER_BIN),
                           ('PORTSERVERCTL_BIN', PORTSERVERCTL_BIN),
                           ('PORTPICKER_BIN', PORTPICKER_BIN)):
            if not path or not os.access(path, os.X_OK):
                self.fail('%s not found: %r' % (name, path))
        self.children = []
        self.server = Server(free_ports(self.POOL_SIZE), self.EXTRA_ARGS,
                             self.WRAPPER, self.VERBOSE)
        self.pool = set(self.server.ports)

    def tearDown(self):
        for child in self.children:
            child.kill()
            child.wait()
        status = self.server.stop()
        if status != 0:
            self.fail('server exited %s\n%s' % (status, self.server.log.text()))

    def sleeper(self, name='sleep', **kwargs):
        """A live process to own leases: /bin/sleep, command line
        `<name> 600`."""
        child = subprocess.Popen([name, '600'], executable='/bin/sleep',
                                 **kwargs)
        self.children.append(child)
        return child

    def run_tool(self, argv, env_extra=None, preexec_fn=None):
        env = dict(os.environ)
        env.pop('TEST_TARGET', None)
        env['PORTSERVER_ADDRESS'] = self.server.address
        env.update(env_extra or {})
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, preexec_fn=preexec_fn)
        return done.returncode, done.stdout, done.stderr

    def ctl(self, *args, **kwargs):
        return self.run_tool([PORTSERVERCTL_BIN] + list(args), **kwargs)

    def ctl_json(self, *args, expect=0, **kwargs):
        code, out, err = self.ctl('--json', *args, **kwargs)
        self.assertEqual(code, expect, 'portserverctl %s: %s%s\n%s' %
                         (' '.join(args), out, err, self.server.log.text()))
        return json.loads(out)

    def portpicker(self, *args, label=None, expect=0, **kwargs):
        extra = {'TEST_TARGET': label} if label else {}
        if '--no-fallback' not in args:
            args = ('--no-fallback',) + args  # A fallback would hide faults.
        code, out, err = self.run_tool([PORTPICKER_BIN] + list(args),
                                       env_extra=extra, **kwargs)
        self.assertEqual(code, expect, 'portpicker %s: %s%s\n%s' %
                         (' '.join(args), out, err, self.server.log.text()))
        return [int(line) for line in out.split()], err


class LeasesTest(ControlTestCase):

    def test_output_that_cannot_be_written_is_an_error(self):
        # A full disk: `portserverctl --json leases > file` exited 0 with
        # an empty file (a tester); now 1, saying why.
        env = dict(os.environ, PORTSERVER_ADDRESS=self.server.address)
        for args in (['status'], ['--json', 'leases'], ['metrics'],
                     ['--help']):
            with open('/dev/full', 'w') as full:
                done = subprocess.run([PORTSERVERCTL_BIN] + args, env=env,
                                      stdin=subprocess.DEVNULL, stdout=full,
                                      stderr=subprocess.PIPE, text=True,
                                      timeout=RUN_TIMEOUT)
            self.assertEqual(done.returncode, 1, (args, done.stderr))
            self.assertIn('cannot write the output', done.stderr, args)

    def test_portpicker_that_cannot_print_gives_the_ports_back(self):
        # `portpicker -n 2 $pid > /dev/full` exited 1 ("cannot write the
        # ports") with both ports still leased: a script takes exit 1 for
        # "no ports", and a retry leaked more (a new user's trial).
        owner = self.sleeper()
        env = dict(os.environ, PORTSERVER_ADDRESS=self.server.address)
        env.pop('TEST_TARGET', None)
        with open('/dev/full', 'w') as full:
            done = subprocess.run(
                [PORTPICKER_BIN, '--no-fallback', '-n', '2', str(owner.pid)],
                env=env, stdin=subprocess.DEVNULL, stdout=full,
                stderr=subprocess.PIPE, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn('cannot write the ports', done.stderr)
        self.assertIn('the ports were released', done.stderr)
        self.assertEqual(self.ctl_json('leases', '--owner',
                                       str(owner.pid))['leases'], [],
                         self.server.log.text())

    def test_leak_is_found_by_its_label(self):
        leaky = self.sleeper('leaky')
        other = self.sleeper('tidy')
        ports, _ = self.portpicker('-n', '3', str(leaky.pid),
                                   label='//pkg:leaky_test')
        self.assertEqual(len(set(ports)), 3)
        self.assertTrue(set(ports) <= self.pool)
        tidy, _ = self.portpicker(str(other.pid), label='//pkg:tidy_test')

        found = self.ctl_json('leases', '--label', '//pkg:leaky_test')['leases']
        self.assertEqual(sorted(l['port'] for l in found), sorted(ports))
        for lease in found:
            self.assertEqual(lease['pid'], leaky.pid)
            self.assertEqual(lease['cmdline'], 'leaky 600')
            self.assertEqual(lease['label'], '//pkg:leaky_test')
            self.assertEqual(lease['uid'], os.getuid())
            self.assertLessEqual(abs(lease['since_ms'] / 1000 - time.time()),
                                 60)
        everything = self.ctl_json('leases')['leases']
        self.assertEqual(len(everything), 4)
        by_owner = self.ctl_json('leases', '--owner', str(other.pid))['leases']
        self.assertEqual([l['port'] for l in by_owner], tidy)

        # For people: one aligned row per lease, under a header.
        code, out, _ = self.ctl('leases', '--label', '//pkg:leaky_test')
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(),
                         ['PORT', 'PID', 'UID', 'AGE', 'LABEL', 'COMMAND'])
        self.assertEqual(len(lines), 4)
        column = lines[0].index('COMMAND')
        for line in lines[1:]:
            self.assertEqual(line[column:], 'leaky 600')
            self.assertRegex(line, r'^\d+ +%d +%d +\d+s +//pkg:leaky_test '
                             % (leaky.pid, os.getuid()))

    def test_each_lease_keeps_its_own_label(self):
        # A long-lived runner asks for ports on behalf of several targets:
        # each lease is found by the label it was asked with.
        runner = self.sleeper('runner')
        first, _ = self.portpicker(str(runner.pid), label='//pkg:first_test')
        second, _ = self.portpicker('-n', '2', str(runner.pid),
                                    label='//pkg:second_test')
        plain, _ = self.portpicker(str(runner.pid))
        for label, ports in (('//pkg:first_test', first),
                             ('//pkg:second_test', second)):
            found = self.ctl_json('leases', '--label', label)['leases']
            self.assertEqual(sorted(l['port'] for l in found), sorted(ports),
                             label)
            for lease in found:
                self.assertEqual(lease['pid'], runner.pid)
                self.assertEqual(lease['label'], label)
        by_port = {l['port']: l for l in
                   self.ctl_json('leases', '--owner', str(runner.pid))['leases']}
        self.assertEqual(sorted(by_port), sorted(first + second + plain))
        self.assertEqual(by_port[plain[0]].get('label', ''), '')
        [report] = self.ctl_json('who', str(second[0]))['ports']
        self.assertEqual(report['label'], '//pkg:second_test')

    def test_a_dash_label_is_not_shown_as_no_label(self):
        # For people, "-" in the LABEL column means no label: a lease
        # labelled "-" (or with a space) is shown quoted.
        owner = self.sleeper('dash')
        dash, _ = self.portpicker(str(owner.pid), label='-')
        spaced, _ = self.portpicker(str(owner.pid), label='two words')
        plain, _ = self.portpicker(str(owner.pid))
        code, out, _ = self.ctl('leases', '--owner', str(owner.pid))
        self.assertEqual(code, 0)
        lines = out.splitlines()
        start = lines[0].index('LABEL')
        end = lines[0].index('COMMAND')
        shown = {int(line.split()[0]): line[start:end].strip()
                 for line in lines[1:]}
        self.assertEqual(shown, {dash[0]: '"-"', spaced[0]: '"two words"',
                                 plain[0]: '-'})
        by_port = {l['port']: l for l in
                   self.ctl_json('leases', '--owner', str(owner.pid))['leases']}
        self.assertEqual(by_port[dash[0]]['label'], '-')
        self.assertNotIn('label', by_port[plain[0]])

    def test_label_filter_is_cut_as_the_client_cuts_labels(self):
        # The C++ client sends at most 128 bytes of $TEST_TARGET (cut at a
        # character boundary) with control characters as '?':
        # `leases --label "$TEST_TARGET"` finds what it sent.
        owner = self.sleeper('long-label')
        long_label = 'x' * 129
        cut_inside = 'y' * 127 + '\u00e9z'  # 'é' spans bytes 128 and 129.
        control = '//x:y\tz'
        leased = {}
        for label in (long_label, cut_inside, control):
            [leased[label]], _ = self.portpicker(str(owner.pid), label=label)
        for label, sent in ((long_label, 'x' * 128), (cut_inside, 'y' * 127),
                            (control, '//x:y?z')):
            found = self.ctl_json('leases', '--label', label)['leases']
            self.assertEqual([(l['port'], l['label']) for l in found],
                             [(leased[label], sent)], label)
            code, out, err = self.ctl('leases', '--label', label)
            self.assertEqual(code, 0, err)
            self.assertNotIn('no leases', out)
            self.assertEqual(int(out.splitlines()[1].split()[0]),
                             leased[label])
        # What was sent finds it too; a longer filter is cut, not refused.
        self.assertEqual(len(self.ctl_json('leases', '--label', 'x' * 128)
                             ['leases']), 1)
        code, out, err = self.ctl('leases', '--label', 'x' * 20000)
        self.assertEqual(code, 0, out + err)
        self.assertEqual(int(out.splitlines()[1].split()[0]),
                         leased[long_label])

    def test_tables_for_people_show_only_printable_aligned_cells(self):
        # Labels sent by hand may hold C1 controls (CSI is U+009B, bytes C2
        # 9B) and bytes that are not UTF-8; a command line too. For people,
        # each is one '?', and columns are aligned by characters ('é' is one
        # wide).
        owner = self.sleeper('c1\u009b2J')
        ports = []
        for label in (b'caf%C3%A9', b'x%C2%9B31m', b'bad%FF'):
            reply = raw_exchange(
                self.server.address,
                b'portserver/1 allocate pid=%d label=%s\n' % (owner.pid, label))
            self.assertTrue(reply.startswith(b'portserver/1 ok'), reply)
            ports.append(int(re.search(rb' ports=(\d+)', reply).group(1)))
        env = dict(os.environ, PORTSERVER_ADDRESS=self.server.address)
        for args in (['leases'], ['who'] + [str(p) for p in ports]):
            out = subprocess.run([PORTSERVERCTL_BIN] + args, env=env,
                                 stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=RUN_TIMEOUT, check=True).stdout
            self.assertNotIn(b'\xc2\x9b', out)
            self.assertNotIn(b'\xff', out)
            lines = out.decode('utf-8').splitlines()
            column = lines[0].index('COMMAND')
            self.assertEqual([line[column:] for line in lines[1:]],
                             ['c1?2J 600'] * 3, out)
            label = lines[0].index('LABEL')
            self.assertEqual(sorted(line[label:column].strip()
                                    for line in lines[1:]),
                             ['bad?', 'caf\u00e9', 'x?31m'])

    def test_who_names_the_owner_or_says_free_or_outside(self):
        owner = self.sleeper('who-test')
        [port], _ = self.portpicker(str(owner.pid), label='//pkg:who_test')
        report = self.ctl_json('who', str(port))['ports']
        self.assertEqual(len(report), 1)
        self.assertEqual(report[0]['state'], 'leased')
        self.assertEqual(report[0]['pid'], owner.pid)
        self.assertEqual(report[0]['cmdline'], 'who-test 600')
        self.assertEqual(report[0]['label'], '//pkg:who_test')
        code, out, _ = self.ctl('who', str(port))
        self.assertEqual(code, 0, out)
        self.assertIn('who-test 600', out)
        self.assertIn(str(owner.pid), out)

        free = min(self.pool - {port})
        outside = max(self.pool) + 1
        while outside in self.pool:
            outside += 1
        report = self.ctl_json('who', str(free), str(outside), expect=1)
        self.assertEqual([r['state'] for r in report['ports']],
                         ['free', 'not-in-pool'])
        # A port in the pool that someone else holds.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', free))
            s.listen(1)
            report = self.ctl_json('who', str(free), expect=1)
            self.assertEqual(report['ports'][0]['state'], 'busy')

    def test_who_tells_a_neighbouring_servers_lease_from_other_use(self):
        # A port a neighbouring server (same pool, another address) leased
        # was "busy (in use outside the server)", as if some program had
        # bound it: now "locked", since the neighbour holds its lock.
        neighbour = Server(sorted(self.pool))
        self.addCleanup(neighbour.stop)
        owner = self.sleeper()
        code, out, err = self.run_tool(
            [PORTPICKER_BIN, '--no-fallback', str(owner.pid)],
            env_extra={'PORTSERVER_ADDRESS': neighbour.address})
        self.assertEqual(code, 0, err + neighbour.log.text())
        theirs = int(out)
        report = self.ctl_json('who', str(theirs), expect=1)
        self.assertEqual(report['ports'][0]['state'], 'locked')
        code, out, _ = self.ctl('who', str(theirs))
        self.assertIn('locked (another port server leased it)', out)
        # Bound by a program, not leased by a server: still "busy".
        other = min(self.pool - {theirs})
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', other))
            s.listen(1)
            report = self.ctl_json('who', str(other), expect=1)
            self.assertEqual(report['ports'][0]['state'], 'busy')


class ControlBytesTest(ControlTestCase):
    POOL_SIZE = 2

    def test_labels_and_command_lines_cannot_forge_log_or_output_lines(self):
        # Any local user chooses the label and its own command line: a
        # newline or an escape sequence in them must not reach the server's
        # log or portserverctl's output as such.
        forged = '\nI1130 00:00:00.000 1 server.cc:1] forged\x1b[31m'
        owner = self.sleeper('evil' + forged)
        reply = raw_exchange(
            self.server.address,
            b'portserver/1 allocate pid=%d label=x%%0Aforged%%1B\n' %
            owner.pid)
        self.assertIn(b'code=bad-argument', reply)
        [port], _ = self.portpicker(str(owner.pid))
        code, out, err = self.ctl('leases')
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out.splitlines()), 2, out)  # Header, one lease.
        self.assertNotIn('\x1b', out)
        lease = self.ctl_json('who', str(port))['ports'][0]
        self.assertEqual(lease['cmdline'],
                         'evil?I1130 00:00:00.000 1 server.cc:1] forged?[31m'
                         ' 600')
        # A control character in TEST_TARGET costs no reservation: the
        # client sends '?' for it (portpicker runs with --no-fallback here).
        self.ctl('release', str(port))
        [port], _ = self.portpicker(str(owner.pid), label='//x:y\tz')
        lease = self.ctl_json('who', str(port))['ports'][0]
        self.assertEqual(lease['label'], '//x:y?z')
        # The pool runs out (its last port taken, then one more asked for):
        # the biggest holders are logged.
        self.portpicker(str(owner.pid))
        self.portpicker('-n', '1', str(owner.pid), expect=1)
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'biggest holders' in l, timeout=LOG_TIMEOUT))
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'holds 2 port(s)' in l, timeout=LOG_TIMEOUT))
        log = self.server.log.text()
        self.assertNotIn('forged\n', log)
        self.assertNotIn('\nI1130 00:00:00.000 1 server.cc:1]', log)
        self.assertNotIn('\x1b', log)


class NetnsTest(unittest.TestCase):
    """control_test.sh --netns: the unsandboxed classes run in a network
    namespace of their own (not their parent's), where no other test takes
    their ports."""

    def test_runs_in_its_own_network_namespace(self):
        self.assertNotEqual(os.stat('/proc/self/ns/net').st_ino,
                            os.stat('/proc/%d/ns/net' % os.getppid()).st_ino)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', 0))  # Loopback is up.


class RestartTest(ControlTestCase):
    """Leases restored from the journal keep what names their owner."""

    def setUp(self):
        self.state_dir = tempfile.mkdtemp(prefix='control_restart_')
        self.EXTRA_ARGS = ('--portserver_state_file=' +
                           os.path.join(self.state_dir, 'journal'),)
        super().setUp()

    def tearDown(self):
        super().tearDown()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def test_restored_leases_keep_uid_and_command_line(self):
        owner = self.sleeper('restored')
        ports, _ = self.portpicker('-n', '2', str(owner.pid),
                                   label='//pkg:restart_test')
        self.assertEqual(self.server.stop(), 0)
        self.server = Server(self.server.ports, self.EXTRA_ARGS)
        found = self.ctl_json('leases', '--owner', str(owner.pid))['leases']
        self.assertEqual(sorted(l['port'] for l in found), sorted(ports),
                         self.server.log.text())
        for lease in found:
            self.assertEqual(lease['uid'], os.getuid())
            self.assertEqual(lease['cmdline'], 'restored 600')
        # Its owner may still give them back.
        self.ctl_json('release', str(ports[0]))
        left = self.ctl_json('leases', '--owner', str(owner.pid))['leases']
        self.assertEqual([l['port'] for l in left], ports[1:])

    def test_labels_and_lease_times_survive_kill_9(self):
        # issue 12: the journal keeps each lease's label and lease time, so
        # `leases --label` still finds a leak after the server was killed
        # and started again on the same state file.
        owner = self.sleeper('labelled')
        labelled, _ = self.portpicker('-n', '2', str(owner.pid),
                                      label='//pkg:restart_test')
        plain, _ = self.portpicker(str(owner.pid))
        before = {l['port']: l for l in
                  self.ctl_json('leases', '--owner', str(owner.pid))['leases']}
        self.assertEqual(sorted(before), sorted(labelled + plain))
        for port in labelled:
            self.assertEqual(before[port]['label'], '//pkg:restart_test')
        self.assertNotIn('label', before[plain[0]])
        # Lease times are kept to the second: let the clock pass the second
        # they were taken in, so that a time taken at the restart differs.
        latest = max(l['since_ms'] for l in before.values()) / 1000.0
        while time.time() < latest + 1.0:
            time.sleep(0.05)  # Waits for the clock, not for the server.

        self.server.proc.kill()  # kill -9: no clean stop, the journal stays.
        self.server.proc.wait(timeout=RUN_TIMEOUT)
        self.server.log.join()
        restarted_after_ms = time.time() * 1000
        self.server = Server(self.server.ports, self.EXTRA_ARGS)

        found = self.ctl_json('leases', '--label',
                              '//pkg:restart_test')['leases']
        self.assertEqual(sorted(l['port'] for l in found), sorted(labelled),
                         self.server.log.text())
        after = {l['port']: l for l in
                 self.ctl_json('leases', '--owner', str(owner.pid))['leases']}
        self.assertEqual(sorted(after), sorted(before))
        for port, lease in after.items():
            self.assertEqual(lease['pid'], owner.pid)
            self.assertEqual(lease.get('label'), before[port].get('label'))
            self.assertEqual(lease['since_ms'], before[port]['since_ms'])
            self.assertLess(lease['since_ms'], restarted_after_ms)
            self.assertEqual(lease['cmdline'], 'labelled 600')
        [report] = self.ctl_json('who', str(labelled[0]))['ports']
        self.assertEqual(report['label'], '//pkg:restart_test')
        self.assertEqual(report['since_ms'], before[labelled[0]]['since_ms'])
        # The journal read back whole: no line reported damaged.
        self.assertNotRegex(self.server.log.text(),
                            r'State file .*: line \d+:')


class BigPoolTest(ControlTestCase):
    POOL_SIZE = 300

    def test_listing_of_a_big_pool_comes_in_bounded_pages(self):
        # 300 leases with long command lines: more than one reply's worth.
        owner = self.sleeper('x' * 200)
        # All but a few (a port may be busy on the host).
        ports, _ = self.portpicker('-n', str(len(self.pool) - 10), str(owner.pid),
                                   label='//pkg:' + 'y' * 100)
        reply = raw_exchange(self.server.address,
                             b'portserver/1 leases limit=1000\n')
        self.assertLessEqual(len(reply), 32 * 1024)
        header = reply.split(b'\n', 1)[0].decode()
        self.assertIn(' next=', header)
        leases = self.ctl_json('leases')['leases']
        self.assertEqual(sorted(l['port'] for l in leases), sorted(ports))

    def test_who_of_many_long_leases_fits_its_replies(self):
        # The longest records: label and command line of bytes that are
        # percent-encoded (3 bytes each). A who of 64 such ports was a
        # 75,860-byte reply, and portserverctl called that "no server".
        # A command line longer than the 256 bytes kept: cut between two
        # characters (--json output must stay UTF-8; a cut inside one made
        # it undecodable).
        owner = self.sleeper('\u00e9' * 130)
        ports, _ = self.portpicker('-n', '70', str(owner.pid),
                                   label='\u00e9' * 64)
        fit = 20  # kWhoPortsThatAlwaysFit
        reply = raw_exchange(self.server.address, b'portserver/1 who ports=' +
                             ','.join(map(str, ports[:fit])).encode() + b'\n')
        self.assertLessEqual(len(reply), 32 * 1024)
        self.assertTrue(reply.startswith(b'portserver/1 ok'), reply[:200])
        # 64 of them (the limit) would not fit: refused, saying how many do.
        reply = raw_exchange(self.server.address, b'portserver/1 who ports=' +
                             ','.join(map(str, ports[:64])).encode() + b'\n')
        self.assertLessEqual(len(reply), 32 * 1024)
        header = reply.split(b'\n', 1)[0]
        self.assertIn(b'code=bad-argument', header)
        self.assertIn(b'at%20most%2020%20at%20a%20time', header)
        # 64 short records do fit (a client of 0.2.0 asks for up to 64).
        short = raw_exchange(self.server.address, b'portserver/1 who ports=' +
                             ','.join(str(p) for p in range(1, 65)).encode() +
                             b'\n')
        self.assertTrue(short.startswith(b'portserver/1 ok'), short[:200])
        self.assertEqual(short.count(b'\nport '), 64)
        # portserverctl asks in batches: every port, in the order asked.
        asked = list(reversed(ports)) + [max(self.pool) + 1]
        report = self.ctl_json('who', *map(str, asked), expect=1)['ports']
        self.assertEqual([r['port'] for r in report], asked)
        self.assertEqual([r['state'] for r in report],
                         ['leased'] * len(ports) + ['not-in-pool'])
        self.assertEqual({r['label'] for r in report[:-1]}, {'\u00e9' * 64})
        self.assertEqual({r['cmdline'] for r in report[:-1]},
                         {'\u00e9' * 126 + '...'})


class ConnectionCapTest(ControlTestCase):
    # At its connection cap the server closes its oldest connection, unread
    # to the end and without a reply (README): what that client had sent so
    # far must not be carried out.
    POOL_SIZE = 4
    EXTRA_ARGS = ('--portserver_max_connections=1',)
    VERBOSE = False  # What is logged at default verbosity is checked.

    def evicted(self, partial):
        """Sends `partial` (no newline) on a connection the server has read,
        then opens another: the reply the first gets (b'' = closed)."""
        first = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with first:
            first.settimeout(RUN_TIMEOUT)
            first.connect(sockaddr(self.server.address))
            first.sendall(partial)
            # Until the server has read it all (SIOCOUTQ: bytes the peer
            # has not read yet).
            deadline = time.monotonic() + RUN_TIMEOUT
            while struct.unpack('i', fcntl.ioctl(
                    first.fileno(), termios.TIOCOUTQ, b'\0' * 4))[0] > 0:
                self.assertLess(time.monotonic(), deadline,
                                'the server never read the request')
                time.sleep(0.01)
            second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with second:
                second.connect(sockaddr(self.server.address))
                reply = first.recv(65536)
        return reply

    def test_request_cut_at_the_cap_is_not_carried_out(self):
        owner = self.sleeper()
        self.assertEqual(self.evicted(
            b'portserver/1 allocate pid=%d count=3' % owner.pid), b'')
        self.assertEqual(self.ctl_json('leases')['leases'], [])

        held, _ = self.portpicker('--no-fallback', '-n', '2', str(owner.pid))
        self.assertEqual(self.evicted(
            b'portserver/1 release ports=%d' % held[0]), b'')
        leased = [l['port'] for l in self.ctl_json('leases')['leases']]
        self.assertEqual(sorted(leased), sorted(held))
        status = self.ctl_json('status')
        self.assertEqual(status['leased'], 2)
        self.assertEqual(status['stats']['ports-released'], 0)
        self.assertEqual(status['stats']['refused-connections'], 2)
        # Logged at default verbosity, as a plain one closed at the cap.
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'closed at the connection cap' in l, timeout=10),
            self.server.log.text())


class ManyPortsOutputTest(ControlTestCase):
    POOL_SIZE = 1024

    def test_ports_a_reader_took_stay_leased(self):
        # `portpicker -n 1024 $pid | head -1` with SIGPIPE ignored: the
        # reader took the first port, the later writes failed (EPIPE), and
        # portpicker released every port, the one in use too, which the
        # next caller got (a reviewer). What got out stays leased.
        owner = self.sleeper()
        env = dict(os.environ, PORTSERVER_ADDRESS=self.server.address)
        env.pop('TEST_TARGET', None)
        # A pipe of one page (F_SETPIPE_SZ, fcntl(2)): the 1024 lines
        # (about 6 KB) do not fit, so the writer is still writing when the
        # reader, having taken its line, goes away.
        reader, writer = os.pipe()
        fcntl.fcntl(writer, 1031, 4096)  # F_SETPIPE_SZ
        picker = subprocess.Popen(
            [PORTPICKER_BIN, '--no-fallback', '-n', '1024', str(owner.pid)],
            env=env, stdin=subprocess.DEVNULL, stdout=writer,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
        os.close(writer)
        # The first line only, as `head -1` takes it, then gone.
        first = int(os.read(reader, 16).split(b'\n')[0])
        os.close(reader)
        _, err = picker.communicate(timeout=RUN_TIMEOUT)
        report = self.ctl_json('who', str(first))['ports'][0]
        self.assertEqual(report['state'], 'leased', err.decode())
        self.assertEqual(report['pid'], owner.pid)


class AllOrNoneTest(ControlTestCase):
    POOL_SIZE = 4

    def test_n_ports_all_or_none(self):
        first = self.sleeper()
        self.portpicker(str(first.pid))
        second = self.sleeper()
        _, err = self.portpicker('--no-fallback', '-n', '4', str(second.pid),
                                 expect=1)
        self.assertIn('pool exhausted (1 of 4 leased', err)
        self.assertEqual(self.ctl_json('leases', '--owner',
                                       str(second.pid))['leases'], [])
        self.assertEqual(len(self.ctl_json('leases')['leases']), 1)
        ports, _ = self.portpicker('--no-fallback', '-n', '3', str(second.pid))
        self.assertEqual(len(set(ports)), 3)
        self.assertEqual(self.ctl_json('status')['leased'], 4)

    def test_count_in_getopt_forms_and_options_ended(self):
        # `portpicker -n3` was "unknown option -n3" (a new user's trial):
        # getopt's forms -nN and -n=N are N too, and after `--` the pid.
        for form, count in ((['-n2'], 2), (['-n=1'], 1), (['--', ], 1)):
            owner = self.sleeper()
            ports, _ = self.portpicker(*(form + [str(owner.pid)]))
            self.assertEqual(len(ports), count, form)
            self.assertEqual(
                sorted(lease['port'] for lease in self.ctl_json(
                    'leases', '--owner', str(owner.pid))['leases']),
                sorted(ports), form)

    def test_version_flags_need_no_server(self):
        # `--version` was an unknown option of both tools; it prints the
        # tool's own version (the server's: `portserverctl version`).
        server_says = self.ctl_json('version')
        nowhere = {'PORTSERVER_ADDRESS': '@nothing-listens-' + str(os.getpid())}
        code, out, err = self.ctl('--version', env_extra=nowhere)
        self.assertEqual((code, err), (0, ''))
        self.assertEqual(out, 'portserverctl %s\n' % server_says['client'])
        code, out, err = self.run_tool([PORTPICKER_BIN, '--version'],
                                       env_extra=nowhere)
        self.assertEqual((code, err), (0, ''))
        self.assertEqual(out, 'portpicker (portserver) %s\n' %
                         server_says['client'])

    def test_biggest_holders_logged_once_per_episode(self):
        hog = self.sleeper('hog')
        self.portpicker('-n', '4', str(hog.pid), label='//pkg:hog_test')
        asker = self.sleeper()
        start = self.server.log.count()
        for _ in range(3):
            self.portpicker('--no-fallback', str(asker.pid), expect=1)
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'Pool exhausted (4 of 4 ports leased); the biggest '
                      'holders:' in l, start=start, timeout=LOG_TIMEOUT))
        holder = self.server.log.wait_for(
            lambda l: 'pid %d holds 4 port(s), label //pkg:hog_test, command '
                      'line: hog 600' % hog.pid in l, start=start,
            timeout=LOG_TIMEOUT)
        self.assertIsNotNone(holder, self.server.log.text())
        # The three denials were logged; the holders only once.
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'Extended request: allocate pid=%d' % asker.pid in l,
            start=holder + 1, timeout=LOG_TIMEOUT))
        text = self.server.log.text(start)
        self.assertEqual(text.count('the biggest holders'), 1, text)



class OwnerEndsDuringRequestTest(ControlTestCase):
    """An owner killed while its request for many ports is probed (a test
    killed by its timeout as it asks): the request is denied, never answered
    with one port listed twice, and the pool stays whole. 10 of the 1030
    ports are in use outside the server, so 1024 can never be had: the
    server must look beyond the queue, and there its sweep finds the owner
    gone and reclaims the ports this very request had leased it."""
    POOL_SIZE = 1030
    BUSY = 10

    def test_owner_killed_during_its_request_gets_no_port_twice(self):
        ports = sorted(self.pool)
        for port in ports[:self.BUSY]:
            held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(held.close)
            held.bind(('127.0.0.1', port))
            held.listen(1)
        for i in range(30):
            owner = subprocess.Popen(['sleep', '600'])
            # The kill lands before, during or after the probing (about
            # 20 ms here); only "during" matters, and most runs hit it.
            killer = threading.Timer(0.001 * (i % 5), owner.kill)
            killer.start()
            reply = raw_exchange(
                self.server.address,
                b'portserver/1 allocate pid=%d count=1024\n' % owner.pid)
            killer.join()
            owner.wait()
            self.assertFalse(
                reply.startswith(b'portserver/1 ok '),
                'only %d ports can be had, yet: %r...' % (
                    len(ports) - self.BUSY, reply[:300]))
            # Killed before or during the request: no such process; after
            # it: the pool could not give 1024.
            self.assertRegex(reply, rb'^portserver/1 error code='
                             rb'(no-such-process|pool-exhausted) ')
        # Nothing stayed leased, nothing is queued twice: a live owner gets
        # the 1020 ports, each once.
        owner = self.sleeper()
        reply = raw_exchange(
            self.server.address, b'portserver/1 allocate pid=%d count=%d\n'
            % (owner.pid, len(ports) - self.BUSY))
        self.assertTrue(reply.startswith(b'portserver/1 ok '), reply[:300])
        granted = [int(p) for p in
                   reply.split(b'ports=')[1].split()[0].split(b',')]
        self.assertEqual(sorted(granted), ports[self.BUSY:])
        self.assertEqual(self.ctl_json('status')['leased'],
                         len(ports) - self.BUSY)

class MetricsTest(ControlTestCase):
    POOL_SIZE = 5

    def metrics(self, text):
        return {f.name: f for f in text_string_to_metric_families(text)}

    def sample(self, families, family, **labels):
        for s in families[family].samples:
            if all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError('no sample %s %r' % (family, labels))

    def test_metrics_parse_as_prometheus_text(self):
        owner = self.sleeper()
        self.portpicker('-n', '2', str(owner.pid))
        self.portpicker('--no-fallback', '1', expect=1)  # init: denied
        code, out, err = self.ctl('metrics')
        self.assertEqual(code, 0, err)
        families = self.metrics(out)
        self.assertEqual(families['portserver_leased_ports'].type, 'gauge')
        self.assertEqual(self.sample(families, 'portserver_leased_ports'), 2)
        self.assertEqual(self.sample(families, 'portserver_pool_ports'), 5)
        self.assertEqual(self.sample(families, 'portserver_free_ports'), 3)
        self.assertEqual(self.sample(families, 'portserver_owners'), 1)
        # Counters: the parser names the family without "_total".
        self.assertEqual(families['portserver_allocations'].type, 'counter')
        self.assertEqual(self.sample(families, 'portserver_allocations'), 1)
        self.assertEqual(self.sample(families,
                                     'portserver_denied_allocations',
                                     reason='invalid-pid'), 1)
        self.assertEqual(families['portserver_build_info'].samples[0].labels[
            'version'], self.ctl_json('version')['server'])


class MetricsFileTest(ControlTestCase):
    POOL_SIZE = 3

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))
        self.path = os.path.join(self.dir, 'portserver.prom')
        self.EXTRA_ARGS = ['--portserver_metrics_file=' + self.path,
                           '--portserver_metrics_interval_s=1']
        super().setUp()

    def leased(self):
        with open(self.path) as f:
            families = {m.name: m for m in
                        text_string_to_metric_families(f.read())}
        return families['portserver_leased_ports'].samples[0].value

    def test_file_is_written_at_start_and_refreshed(self):
        # Written before serving starts.
        self.assertEqual(self.leased(), 0)
        owner = self.sleeper()
        self.portpicker(str(owner.pid))
        deadline = time.monotonic() + 10
        while self.leased() != 1 and time.monotonic() < deadline:
            time.sleep(0.1)  # Waiting for the 1 s period, not for a race.
        self.assertEqual(self.leased(), 1)
        self.assertEqual(sorted(os.listdir(self.dir)), ['portserver.prom'])

    def start_with(self, path, while_serving=None, umask=None):
        """Runs a second server writing metrics to `path`: (status, stderr)
        once it exits, or None if it serves (it is stopped then, after
        while_serving() if given)."""
        argv = [PORTSERVER_BIN, '--portserver_static_pool=' +
                ','.join(map(str, free_ports(1))),
                '--portserver_address=' + new_address('metrics'),
                '--portserver_state_file=none',
                '--portserver_metrics_file=' + path]
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
            preexec_fn=None if umask is None else (lambda: os.umask(umask)))
        err = ''
        for line in proc.stderr:  # Until it serves, or exits.
            err += line
            if 'Serving on' in line:
                if while_serving is not None:
                    while_serving()
                proc.terminate()
                proc.communicate(timeout=RUN_TIMEOUT)
                self.assertEqual(proc.returncode, 0)
                return None
        return proc.wait(timeout=RUN_TIMEOUT), err

    def test_file_is_readable_by_others_and_gone_after_a_clean_stop(self):
        # A service's UMask=0077 must not hide it from node_exporter (another
        # user); a stopped server exports nothing (a new user found both).
        path = os.path.join(self.dir, 'svc.prom')
        modes = []
        self.assertIsNone(self.start_with(
            path, while_serving=lambda: modes.append(os.stat(path).st_mode),
            umask=0o077))
        self.assertEqual(modes[0] & 0o777, 0o644)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + '.tmp'))

    def test_a_directory_it_cannot_write_is_refused_at_start(self):
        status, err = self.start_with(
            os.path.join(self.dir, 'no', 'such', 'dir', 'm.prom'))
        self.assertEqual(status, 2, err)
        self.assertIn('cannot write', err)
        self.assertIn('must exist and be writable', err)
        self.assertIn('ReadWritePaths=', err)

    def test_someone_elses_file_is_refused_and_kept(self):
        # The metrics file is replaced every N seconds: a path naming
        # another file (a typo), or a link planted as its .tmp, must not
        # cost that file.
        precious = os.path.join(self.dir, 'precious.txt')
        with open(precious, 'w') as f:
            f.write('precious data\n')
        status, err = self.start_with(precious)
        self.assertEqual(status, 2, err)
        self.assertIn('is not a metrics file of a portserver', err)
        link = os.path.join(self.dir, 'm.prom')
        os.symlink(precious, link + '.tmp')
        status, err = self.start_with(link)
        self.assertEqual(status, 2, err)
        self.assertIn('not a regular file', err)
        with open(precious) as f:
            self.assertEqual(f.read(), 'precious data\n')

    def test_a_file_a_crash_left_is_taken(self):
        # Ours, damaged: cut short, or NULs only after a power loss (the
        # writes are not synced). Not someone else's: taken and rewritten.
        for left in (b'# HELP', b'\0' * 100, b''):
            path = os.path.join(self.dir, 'crashed.prom')
            with open(path, 'wb') as f:
                f.write(left)
            def rewritten():
                with open(path) as f:
                    self.assertTrue(f.read().startswith('# HELP portserver_'))
            self.assertIsNone(self.start_with(path, while_serving=rewritten),
                              left)

    def test_a_link_planted_later_is_not_written_through(self):
        os.unlink(self.path)  # Written again at the next period.
        victim = os.path.join(self.dir, 'victim.txt')
        with open(victim, 'w') as f:
            f.write('victim\n')
        os.symlink(victim, self.path + '.tmp')
        self.assertIsNotNone(self.server.log.wait_for(
            lambda l: 'Metrics file: cannot write' in l, timeout=10),
            self.server.log.text())
        with open(victim) as f:
            self.assertEqual(f.read(), 'victim\n')


class DebugLogTest(ControlTestCase):
    POOL_SIZE = 3
    EXTRA_ARGS = ('--debug',)

    def test_extended_allocate_logs_the_probes_made(self):
        # --debug promises the caller's credentials and the probes made, for
        # extended requests too (every portpicker call; a new user saw only
        # the caller).
        owner = self.sleeper()
        busy = min(self.pool)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', busy))
            s.listen(1)
            self.portpicker('-n', '2', str(owner.pid))
        index = self.server.log.wait_for(
            lambda l: 'Extended request: allocate' in l and 'ports_checked='
            in l, timeout=10)
        self.assertIsNotNone(index, self.server.log.text())
        line = self.server.log.lines[index]
        self.assertIn('peer_pid=', line)
        self.assertIn('ports_checked=3 busy=1 reclaimed=0', line)


class WireTest(ControlTestCase):
    POOL_SIZE = 2

    def test_extended_requests_always_get_a_reply(self):
        for payload in (b'portserver/1 frobnicate\n', b'portserver/9 status\n',
                        b'portserver/1 who\n', b'portserver/x\n',
                        b'portserver/' + b'p' * 9000, b'portserver/1 status'):
            reply = raw_exchange(self.server.address, payload)
            self.assertRegex(reply.decode(), r'^portserver/1 (ok|error)',
                             payload[:40])
            self.assertTrue(reply.endswith(b'end\n'), reply)
        too_long = raw_exchange(self.server.address,
                                b'portserver/' + b'p' * 9000)
        self.assertIn(b'code=malformed', too_long)
        self.assertIn(b'8192', too_long)

    def test_any_newer_version_is_unsupported_not_malformed(self):
        # version = 1*DIGIT: a newer client learns what this server speaks,
        # however many digits its version has.
        for version in (b'2', b'1000000', b'9' * 30):
            reply = raw_exchange(self.server.address,
                                 b'portserver/' + version + b' status\n')
            self.assertTrue(reply.startswith(
                b'portserver/1 error code=unsupported-version '), reply)
            self.assertIn(version, reply)
            self.assertTrue(reply.endswith(b'end\n'), reply)
        reply = raw_exchange(self.server.address,
                             b'portserver/0000001 version\n')
        self.assertTrue(reply.startswith(b'portserver/1 ok '), reply)

    def test_error_message_quotes_the_request_as_sent(self):
        # The message is percent-encoded once, as every value; decoded, it
        # shows the bad word as the client sent it.
        for word in (b'pid=%zz', b'label=50%', b'Bad=1', b'a%20b'):
            reply = raw_exchange(self.server.address,
                                 b'portserver/1 allocate ' + word + b'\n')
            fields = dict(f.split(b'=', 1)
                          for f in reply.split(b'\n', 1)[0].split()[2:])
            self.assertEqual(fields[b'code'], b'malformed', reply)
            message = urllib.parse.unquote_to_bytes(fields[b'message'])
            self.assertIn(b'"' + word + b'"', message)

    def test_pool_exhausted_says_how_many_ports_are_busy_outside(self):
        # Not every port that is not leased can be had: the refused client
        # learns that some are in use outside the server, not only "1 of 2
        # leased".
        owner = self.sleeper()
        busy, other = sorted(self.pool)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(('127.0.0.1', busy))
            s.listen(1)
            _, err = self.portpicker('-n', '2', str(owner.pid), expect=1)
        self.assertIn('pool exhausted (0 of 2 leased, 1 in use outside the '
                      'server; 1 of 2 ports could be had)', err)

    def test_port_busy_for_long_is_leased_as_soon_as_it_is_free(self):
        # Denied while both ports are held outside the server; then one is
        # closed: the next request gets it, not a denial until the port's
        # backoff (doubled by each request that found it busy) runs out.
        holders = []
        for port in sorted(self.pool):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(('127.0.0.1', port))
            s.listen(1)
            holders.append(s)
        try:
            for _ in range(40):
                self.assertEqual(raw_exchange(self.server.address,
                                              b'%d\n' % os.getpid()), b'')
            holders[0].close()
            reply = raw_exchange(self.server.address, b'%d\n' % os.getpid())
            self.assertEqual(reply, b'%d\n' % min(self.pool))
        finally:
            for s in holders:
                s.close()

    def test_plain_requests_keep_their_meaning(self):
        # 20 bytes at most, silent close on a denial or a malformed request
        # (anything not starting with "portserver/" is a plain request).
        self.assertEqual(raw_exchange(self.server.address, b'-5\n'), b'')
        self.assertEqual(raw_exchange(self.server.address, b'1' * 21), b'')
        self.assertEqual(raw_exchange(self.server.address, b'hello\n'), b'')
        self.assertEqual(raw_exchange(self.server.address, b'p' * 30), b'')
        reply = raw_exchange(self.server.address, b'%d\n' % os.getpid())
        self.assertIn(int(reply), self.pool)

    def test_usage_and_no_server_exit_codes(self):
        self.assertEqual(self.ctl()[0], 2)
        self.assertEqual(self.ctl('frobnicate')[0], 2)
        self.assertEqual(self.ctl('who', 'x')[0], 2)
        self.assertEqual(self.ctl('--address', new_address('none'),
                                  'status')[0], 3)
        code, out, err = self.ctl('status')
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r'^portserver \S+ \(protocol 1\) at %s, up \d+s'
                         % re.escape(self.server.address))


    def test_release_says_a_port_outside_the_pool_is_not_in_it(self):
        outside = max(self.pool) + 1
        while outside in self.pool:
            outside += 1
        free = min(self.pool)
        code, out, err = self.ctl('release', str(outside))
        self.assertEqual(code, 1, out + err)
        self.assertIn('port %d is not in the pool' % outside, err)
        code, out, err = self.ctl('release', str(free))
        self.assertEqual(code, 1, out + err)
        self.assertIn('port %d is not leased' % free, err)

    def test_a_port_named_twice_is_a_usage_error(self):
        # The server takes distinct ports only: portserverctl says which
        # port is repeated before asking (exit 2, usage), and the server's
        # own refusal names it too.
        owner = self.sleeper()
        [port], _ = self.portpicker(str(owner.pid))
        other = min(self.pool - {port})
        for verb in ('who', 'release'):
            code, out, err = self.ctl(verb, str(port), str(other), str(port))
            self.assertEqual(code, 2, out + err)
            self.assertIn('port %d is named twice' % port, err)
            reply = raw_exchange(self.server.address, b'portserver/1 %s '
                                 b'ports=%d,%d\n' % (verb.encode(), port, port))
            self.assertIn(b'code=bad-argument', reply)
            self.assertIn(b'port%%20%d%%20is%%20named%%20twice' % port, reply)
        self.assertEqual([l['port'] for l in self.ctl_json('leases')['leases']],
                         [port])


class BigReleaseTest(ControlTestCase):
    POOL_SIZE = 1024

    def test_release_of_the_documented_maximum_of_ports(self):
        # docs/protocol.md: release takes at most 1024 ports; written as
        # 5-digit ports, that request must fit the request limit.
        owner = self.sleeper()
        ports, _ = self.portpicker('-n', '1024', str(owner.pid))
        self.assertEqual(len(set(ports)), 1024)
        code, out, err = self.ctl('release', *map(str, ports))
        self.assertEqual(code, 0, out + err)
        self.assertEqual(self.ctl_json('leases')['leases'], [])


class OtherUsersTestCase(ControlTestCase):
    """Runs the tools as other users: root only, unsandboxed
    (//tests:control_permission_test)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to switch users')
        super().setUp()
        # Other users cannot reach Bazel's output tree (under /root): run
        # copies of the tools from a directory they can read.
        global PORTPICKER_BIN, PORTSERVERCTL_BIN
        self.tools = tempfile.mkdtemp(prefix='control_test-')
        os.chmod(self.tools, 0o755)
        self.originals = (PORTPICKER_BIN, PORTSERVERCTL_BIN)
        for name in ('PORTPICKER_BIN', 'PORTSERVERCTL_BIN'):
            copy = os.path.join(self.tools, os.path.basename(globals()[name]))
            shutil.copyfile(globals()[name], copy)
            os.chmod(copy, 0o755)
            globals()[name] = copy

    def tearDown(self):
        global PORTPICKER_BIN, PORTSERVERCTL_BIN
        PORTPICKER_BIN, PORTSERVERCTL_BIN = self.originals
        shutil.rmtree(self.tools, ignore_errors=True)
        super().tearDown()


class HidePidTest(OtherUsersTestCase):
    """With /proc mounted hidepid=2 (in the server's own mount namespace),
    a user sees only its own user's command lines; root sees all."""
    POOL_SIZE = 4
    WRAPPER = ('unshare', '--mount', '--propagation', 'private', 'sh', '-c',
               'mount -t proc -o hidepid=2 proc /proc && exec "$0" "$@"')

    def test_other_users_command_lines_are_hidden(self):
        mine = self.sleeper('nobodys-secret', preexec_fn=become(NOBODY))
        self.portpicker(str(mine.pid), preexec_fn=become(NOBODY))
        roots = self.sleeper('roots-secret')
        self.portpicker(str(roots.pid))
        seen = {l['pid']: l for l in
                self.ctl_json('leases', preexec_fn=become(NOBODY))['leases']}
        self.assertEqual(seen[mine.pid]['cmdline'], 'nobodys-secret 600')
        self.assertNotIn('cmdline', seen[roots.pid])
        self.assertTrue(seen[roots.pid]['cmdline_hidden'])
        code, out, _ = self.ctl('leases', preexec_fn=become(NOBODY))
        self.assertEqual(code, 0)
        self.assertNotIn('roots-secret', out)
        self.assertIn('(hidden', out)
        # Root sees both.
        seen = {l['pid']: l for l in self.ctl_json('leases')['leases']}
        self.assertEqual(seen[roots.pid]['cmdline'], 'roots-secret 600')
        self.assertEqual(seen[mine.pid]['cmdline'], 'nobodys-secret 600')


class ReleaseTest(OtherUsersTestCase):
    """Release by the owner's user or root; refused for another user. Runs
    as root, switching users for real (//tests:control_permission_test)."""
    POOL_SIZE = 4

    def test_release_by_owner_refused_for_another_user(self):
        owner = self.sleeper('owned-by-nobody', preexec_fn=become(NOBODY))
        try:
            ports, _ = self.portpicker('-n', '2', str(owner.pid),
                                       preexec_fn=become(NOBODY))
        except (PermissionError, subprocess.SubprocessError) as e:
            self.skipTest('cannot run as uid %d here: %s' % (NOBODY, e))
        first, second = ports
        code, out, err = self.ctl('release', str(first),
                                  preexec_fn=become(DAEMON))
        self.assertEqual(code, 1, out + err)
        self.assertIn('running as uid %d' % NOBODY, err)
        self.assertIn('you run as uid %d' % DAEMON, err)
        self.assertEqual(self.ctl_json('who', str(first))['ports'][0]['state'],
                         'leased')

        code, out, err = self.ctl('release', str(first),
                                  preexec_fn=become(NOBODY))
        self.assertEqual(code, 0, err)
        self.assertEqual(out, 'released %d\n' % first)
        # Back through the same checks as a reclaimed port: probed, then
        # leased again.
        report = self.ctl_json('who', str(first), expect=1)['ports'][0]
        self.assertEqual(report['state'], 'free')
        # Root may release anyone's.
        self.ctl_json('release', str(second))
        self.assertEqual(self.ctl_json('status')['leased'], 0)
        taker = self.sleeper()
        got, _ = self.portpicker('-n', '4', str(taker.pid))
        self.assertEqual(set(got), self.pool)

    def test_a_process_that_is_not_dumpable_is_its_users(self):
        # The files in /proc/<pid> of a process that is not dumpable
        # (prctl(PR_SET_DUMPABLE, 0); a uid change without exec) belong to
        # root; the process still runs as its user, who may lease ports to
        # it, plain or extended, and release them.
        script = textwrap.dedent('''
            import ctypes, json, os, socket, sys
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
            def ask(line):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect('\\0' + sys.argv[1][1:])
                    s.sendall(line.encode())
                    data = b''
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            return data.decode()
                        data += chunk
            me = os.getpid()
            plain = ask('%d\\n' % me)
            many = ask('portserver/1 allocate pid=%d count=2\\n' % me)
            port = many.split(' ports=')[1].split(',')[0] if ' ports=' in many else '0'
            released = ask('portserver/1 release ports=%s\\n' % port)
            print(json.dumps([me, open('/proc/self/status').read(),
                              os.stat('/proc/self/stat').st_uid, plain, many,
                              released]))
            ''')
        try:
            out = subprocess.run(['/usr/bin/python3', '-c', script,
                                  self.server.address],
                                 preexec_fn=become(NOBODY), check=True,
                                 capture_output=True, text=True,
                                 timeout=RUN_TIMEOUT).stdout
        except (PermissionError, subprocess.SubprocessError) as e:
            self.skipTest('cannot run as uid %d here: %s' % (NOBODY, e))
        pid, status, stat_owner, plain, many, released = json.loads(out)
        self.assertIn('Uid:\t%d' % NOBODY, status)
        self.assertEqual(stat_owner, 0)  # What made the old probe say root.
        self.assertRegex(plain, r'^\d+\n$', self.server.log.text())
        self.assertTrue(many.startswith('portserver/1 ok'), many)
        self.assertTrue(released.startswith('portserver/1 ok'), released)
        self.assertNotIn('permission', self.server.log.text())


if __name__ == '__main__':
    junit_runner.main('control_test', sys.argv)
