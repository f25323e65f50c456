#!/usr/bin/python3
"""Black-box compatibility tests of //app:portserver.

The binary must be a drop-in replacement for Google's python portserver
(python3-portpicker): the real, unmodified `portpicker` client module talks to
it over an AF_UNIX stream socket ("<pid>\\n" -> "<port>\\n", or a close
without a reply for a denial).

Run with Debian's /usr/bin/python3 (it has `portpicker`). The binary comes from
the environment variable PORTSERVER_BIN (set by compat_test.sh) or from the
option --portserver_bin=PATH given before the unittest arguments.

Every test case starts its own server on a private abstract address
(@portserver-compat-<pid>-<run token>-<counter>) with a small pool taken from 20000-29999
(a different pool per test class) and stops it with SIGTERM in tearDown,
expecting exit status 0. Synchronisation is done by reading the server's
stderr line by line (bounded waits), never by sleeping.
"""

import errno
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import portpicker

import junit_runner  # tests/junit_runner.py, beside this file
from testlib import (Closed, LineCollector, find_nonexistent_pid,  # tests/
                     pool_ports, run_to_completion, sockaddr)
from testlib import new_address as testlib_new_address

# --------------------------------------------------------------------------
# Configuration.

PORTSERVER_BIN = os.environ.get('PORTSERVER_BIN', '')
_argv = [sys.argv[0]]
for _arg in sys.argv[1:]:
    if _arg.startswith('--portserver_bin='):
        PORTSERVER_BIN = _arg.split('=', 1)[1]
    else:
        _argv.append(_arg)

# The client falls back to $PORTSERVER_ADDRESS (and then to picking a port by
# itself); make sure only the server under test can answer.
os.environ.pop('PORTSERVER_ADDRESS', None)

# portpicker's socket has no timeout; a hung server must fail a test, not hang
# the whole run. (Denials are always checked with the strict raw helper below,
# which tells a timeout apart from a close.)
socket.setdefaulttimeout(15.0)

STARTUP_TIMEOUT = 20.0   # until "Serving on <address>"
EXIT_TIMEOUT = 10.0      # after SIGTERM/SIGINT, or for a run that must fail
REPLY_TIMEOUT = 5.0      # for one request
STATS_TIMEOUT = 10.0     # after SIGUSR1, until "total-allocations N"

ERROR_PREFIX = 'portserver: error: '

# glog-like: "I1125 02:17:10.900 12345 main.cc:80] message"
LOG_LINE_RE = re.compile(
    r'^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+ +\d+ \S+:\d+\] (?P<msg>.*)$')
STAT_NAMES = ('client-request-errors', 'denied-allocations',
              'num-ports-managed', 'num-ports-checked-for-last-request',
              'total-allocations')
STAT_RE = re.compile(r'^(?P<name>%s) (?P<value>\d+)$' %
                     '|'.join(re.escape(n) for n in STAT_NAMES))


# --------------------------------------------------------------------------
# Raw protocol helpers.

def raw_exchange(address, payload, half_close=False, timeout=REPLY_TIMEOUT,
                 stop_at_newline=True):
    """Sends `payload` on a new connection and returns what comes back.

    Returns the bytes received (b'' never: an empty answer is returned as a
    Closed instance). Reading stops at EOF, at a connection reset, or after
    the first newline if stop_at_newline. Raises AssertionError if the server
    neither answers nor closes within `timeout` seconds.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout
    data = b''
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr(address))
        try:
            if payload:
                sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server may close early; look at what it sent anyway.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(1024)
            except ConnectionResetError:
                return data if data else Closed('reset')
            if not chunk:
                return data if data else Closed('eof')
            data += chunk
            if stop_at_newline and b'\n' in data:
                return data
    except socket.timeout:
        raise AssertionError(
            'request %r to %s: the connection was not closed within %.1f s '
            '(bytes received before the timeout: %r)' %
            (payload, address, timeout, data))
    finally:
        sock.close()


def ask(address, pid, pool=None):
    """Requests a port for `pid` exactly like portpicker does, strictly.

    Returns the port (int), or None if the server closed without a reply.
    Fails on a timeout or a malformed reply.
    """
    payload = ('%d\n' % pid).encode('ascii')
    got = raw_exchange(address, payload)
    if isinstance(got, Closed):
        return None
    m = re.match(rb'^([0-9]+)\n$', got)
    if not m:
        raise AssertionError('request %r: expected b"<port>\\n" or a close '
                             'without reply, got %r' % (payload, got))
    port = int(m.group(1))
    if pool is not None and port not in pool:
        raise AssertionError('request %r: port %d is outside the pool %s' %
                             (payload, port, describe_pool(pool)))
    return port


def describe_pool(pool):
    return '%d-%d (%d ports)' % (min(pool), max(pool), len(pool))


# --------------------------------------------------------------------------
# Server process.

class Server(object):
    """One running //app:portserver."""

    def __init__(self, pool, address=None, extra_args=(), flag_args=None):
        self.pool_spec = pool
        self.pool = pool_ports(pool) if pool else None
        self.address = address or new_address()
        if flag_args is None:
            flag_args = ['--portserver_static_pool=' + pool,
                         '--portserver_address=' + self.address]
        self.argv = [PORTSERVER_BIN] + list(flag_args) + list(extra_args)
        self.proc = None
        self.returncode = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stderr = LineCollector(self.proc.stderr)
        self.stdout = LineCollector(self.proc.stdout)
        needle = 'Serving on ' + self.address
        index = self.stderr.wait_for(lambda line: needle in line,
                                     timeout=STARTUP_TIMEOUT)
        if index is None:
            alive = self.proc.poll() is None
            if alive:
                self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.stderr.join(5)
            self.stdout.join(5)
            raise AssertionError(
                'server %r did not log %r within %.0f s (%s, exit status %s)\n'
                '%s' % (self.argv, needle, STARTUP_TIMEOUT,
                        'still running' if alive else 'it exited',
                        self.proc.returncode, self.log()))
        return self

    @property
    def running(self):
        return self.proc is not None and self.returncode is None

    def log(self):
        out = ['---- server command: %s' % ' '.join(self.argv),
               '---- server stderr:', self.stderr.text() if self.proc else '']
        stdout = self.stdout.text() if self.proc else ''
        if stdout:
            out += ['---- server stdout:', stdout]
        out.append('---- end of server output')
        return '\n'.join(out)

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig`, waits for the exit and returns the exit status."""
        if not self.running:
            return self.returncode
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.stderr.join(5)
            self.stdout.join(5)
            raise AssertionError('server did not exit within %.0f s of %s\n%s'
                                 % (EXIT_TIMEOUT, sig.name, self.log()))
        self.returncode = self.proc.returncode
        self.stderr.join(5)
        self.stdout.join(5)
        return self.returncode

    def kill(self):
        if self.running:
            self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.stderr.join(5)
            self.stdout.join(5)

    def stats(self):
        """SIGUSR1, then the five statistics of that dump, as a dict."""
        start = self.stderr.count()
        os.kill(self.proc.pid, signal.SIGUSR1)

        def is_total(line):
            m = LOG_LINE_RE.match(line)
            return bool(m) and m.group('msg').startswith('total-allocations ')

        end = self.stderr.wait_for(is_total, start=start,
                                   timeout=STATS_TIMEOUT)
        if end is None:
            raise AssertionError(
                'no log line "total-allocations N" within %.0f s of SIGUSR1 '
                '(server %s)\n%s' % (
                    STATS_TIMEOUT,
                    'running' if self.proc.poll() is None else
                    'exited with %s' % self.proc.returncode, self.log()))
        with self.stderr.cond:
            lines = self.stderr.lines[start:end + 1]
        stats = {}
        for line in lines:
            m = LOG_LINE_RE.match(line)
            if not m:
                continue
            s = STAT_RE.match(m.group('msg'))
            if s:
                stats[s.group('name')] = int(s.group('value'))
        missing = [n for n in STAT_NAMES if n not in stats]
        if missing:
            raise AssertionError(
                'SIGUSR1 dump lacks %s (lines of the dump: %r)\n%s' %
                (missing, lines, self.log()))
        return stats

    def wait_stats(self, expected, timeout=5.0):
        """Polls stats() until `expected` (a subset) holds; returns the last.

        Counters are read through a signal, so allow a server that counts a
        request just after closing its connection a bounded moment.
        """
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(stats[k] == v for k, v in expected.items()):
                return stats
            if time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


def run_binary(args, timeout=EXIT_TIMEOUT):
    """Runs the binary to completion; returns (status, stdout, stderr)."""
    return run_to_completion([PORTSERVER_BIN] + list(args), timeout)


def new_address():
    return testlib_new_address('compat')


def spawn_sleeper(test):
    child = subprocess.Popen(['sleep', '1000'])

    def cleanup():
        if child.poll() is None:
            child.kill()
            child.wait()
    test.addCleanup(cleanup)
    return child


# --------------------------------------------------------------------------
# Base class.

class ServerTestCase(unittest.TestCase):
    POOL = None            # pool of the server started by setUp; None: none
    EXTRA_ARGS = ()

    def setUp(self):
        self.servers = []
        if PORTSERVER_BIN == '' or not os.access(PORTSERVER_BIN, os.X_OK):
            self.fail('portserver binary not found: PORTSERVER_BIN=%r'
                      % PORTSERVER_BIN)
        self.server = None
        if self.POOL:
            self.server = self.start_server(self.POOL,
                                            extra_args=self.EXTRA_ARGS)
            self.addr = self.server.address
            self.pool = self.server.pool

    def start_server(self, pool, **kwargs):
        server = Server(pool, **kwargs)
        self.servers.append(server)
        server.start()
        return server

    def tearDown(self):
        problems = []
        for server in self.servers:
            if not server.running:
                continue
            try:
                status = server.stop(signal.SIGTERM)
            except AssertionError as e:
                problems.append(str(e))
                continue
            if status != 0:
                problems.append('server exited with status %s after SIGTERM '
                                '(expected 0)\n%s' % (status, server.log()))
        outcome = getattr(self, '_outcome', None)
        failed = outcome is None or not getattr(outcome, 'success', True)
        if failed and not problems:
            for server in self.servers:
                sys.stderr.write('\n[%s] %s\n' % (self.id(), server.log()))
        if problems:
            self.fail('\n'.join(problems))

    # Assertion helpers -------------------------------------------------

    def assert_denied(self, address, pid, server=None):
        got = ask(address, pid)
        self.assertIsNone(
            got, 'request for pid %d: expected a close without reply '
            '(denial), got port %r\n%s' %
            (pid, got, (server or self.server).log()))

    def assert_closed_without_reply(self, address, payload, half_close=False,
                                    server=None):
        got = raw_exchange(address, payload, half_close=half_close,
                           stop_at_newline=False)
        self.assertIsInstance(
            got, Closed, 'request %r: expected the connection to be closed '
            'with zero bytes, got %r\n%s' %
            (payload, got, (server or self.server).log()))
        return got

    def assert_stats(self, expected, server=None):
        server = server or self.server
        stats = server.wait_stats(expected)
        wrong = {k: (v, stats[k]) for k, v in expected.items()
                 if stats[k] != v}
        self.assertFalse(
            wrong, 'SIGUSR1 statistics differ ({name: (expected, got)}): %r; '
            'all: %r\n%s' % (wrong, stats, server.log()))
        return stats


# --------------------------------------------------------------------------
# 1. pick_unused_port through the server; the port is really free.

def _family_usable(family, wildcard):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind((wildcard, 0))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            return False
        raise
    finally:
        s.close()


class PickUnusedPortTest(ServerTestCase):
    POOL = '20000-20009'

    def test_pick_unused_port_returns_free_pool_port(self):
        port = portpicker.pick_unused_port(portserver_address=self.addr)
        self.assertIn(port, self.pool,
                      'pick_unused_port(portserver_address=%r) returned %r, '
                      'not a port of the pool %s (did the server deny and the '
                      'client fall back to a random port?)\n%s' %
                      (self.addr, port, describe_pool(self.pool),
                       self.server.log()))
        families = [(f, w, n) for f, w, n in
                    ((socket.AF_INET, '0.0.0.0', 'IPv4'),
                     (socket.AF_INET6, '::', 'IPv6'))
                    if _family_usable(f, w)]
        if not families:
            self.skipTest('neither IPv4 nor IPv6 is usable on this host')
        for family, wildcard, name in families:
            for type_, tname in ((socket.SOCK_STREAM, 'TCP'),
                                 (socket.SOCK_DGRAM, 'UDP')):
                s = socket.socket(family, type_)
                try:
                    s.bind((wildcard, port))
                    if type_ == socket.SOCK_STREAM:
                        s.listen(1)
                except OSError as e:
                    self.fail('port %d from the server is not free: %s %s '
                              'bind failed: %s\n%s' %
                              (port, name, tname, e, self.server.log()))
                finally:
                    s.close()

    def test_ports_in_use_are_not_handed_out(self):
        # Occupy all pool ports but two in the middle (whatever end the
        # server's order starts from): TCP listeners on most, only a UDP
        # socket on one. The server must test the ports and hand out only
        # the two free ones.
        ports = sorted(self.pool)
        free = {ports[3], ports[6]}
        udp_only = ports[5]
        held = []
        try:
            for port in ports:
                if port in free:
                    continue
                if port == udp_only:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    held.append(s)
                    s.bind(('0.0.0.0', port))
                else:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    held.append(s)
                    s.bind(('0.0.0.0', port))
                    s.listen(1)
            got = [ask(self.addr, os.getpid(), self.pool) for _ in range(2)]
        finally:
            for s in held:
                s.close()
        self.assertEqual(set(got), free,
                         'all pool ports except %r were in use (TCP; only UDP '
                         'for %d); expected exactly the free ones, got %r\n%s'
                         % (sorted(free), udp_only, got, self.server.log()))

    def test_reply_format_and_distinct_ports(self):
        payload = ('%d\n' % os.getpid()).encode('ascii')
        got = raw_exchange(self.addr, payload, stop_at_newline=False)
        self.assertIsInstance(got, bytes, 'request %r: expected "<port>\\n", '
                              'got %r\n%s' % (payload, got, self.server.log()))
        self.assertRegex(got, rb'^[0-9]+\n$',
                         'request %r: reply must be exactly "<port>\\n" then '
                         'a close' % payload)
        first = int(got)
        self.assertIn(first, self.pool)
        second = portpicker.pick_unused_port(portserver_address=self.addr)
        self.assertIn(second, self.pool)
        self.assertNotEqual(first, second,
                            'the same port was handed twice to one live '
                            'process\n%s' % self.server.log())


# --------------------------------------------------------------------------
# 2. One live process exhausts the pool.

class ExhaustionTest(ServerTestCase):
    POOL = '20100-20109'

    def test_pool_exhaustion_for_one_live_process(self):
        pid = os.getpid()
        ports = []
        for i in range(len(self.pool)):
            port = portpicker.get_port_from_port_server(self.addr, pid=pid)
            self.assertIsNotNone(port, 'request %d/%d for live pid %d was '
                                 'denied\n%s' % (i + 1, len(self.pool), pid,
                                                 self.server.log()))
            ports.append(port)
        self.assertEqual(sorted(ports), sorted(self.pool),
                         'expected every pool port exactly once, got %r\n%s'
                         % (ports, self.server.log()))
        # The N+1-th request: denied while the owner lives (twice, to be sure
        # the server keeps denying and keeps serving).
        self.assert_denied(self.addr, pid)
        self.assert_denied(self.addr, pid)
        self.assertIsNone(portpicker.get_port_from_port_server(self.addr,
                                                               pid=pid))
        self.assert_stats({'total-allocations': len(self.pool),
                           'denied-allocations': 3,
                           'client-request-errors': 0,
                           'num-ports-managed': len(self.pool)})


# --------------------------------------------------------------------------
# 3. Ports of a dead process come back.

class NamespaceTest(ServerTestCase):
    """Callers in another pid namespace that share our network namespace."""
    POOL = '20250-20259'
    EXTRA_ARGS = ['--verbose']

    SCRIPT = (
        'import os, sys, portpicker\n'
        'nspid = [l for l in open("/proc/self/status") if l.startswith("NSpid:")]\n'
        'named = int(sys.argv[2]) if len(sys.argv) > 2 else os.getpid()\n'
        'port = portpicker.get_port_from_port_server(sys.argv[1], pid=named)\n'
        'print(nspid[0].split()[1], named, port)\n')

    def run_in_pid_namespace(self, *args):
        # sh stays pid 1 of the new namespace, so python is not "init".
        command = ['unshare', '--pid', '--fork', 'sh', '-c',
                   '/usr/bin/python3 -c "$0" "$@"; true', self.SCRIPT,
                   self.addr] + [str(a) for a in args]
        try:
            out = subprocess.run(command, capture_output=True, text=True,
                                 timeout=30)
        except FileNotFoundError:
            self.skipTest('unshare is not installed')
        if out.returncode != 0 or not out.stdout.strip():
            self.skipTest('cannot create a pid namespace here: %s'
                          % out.stderr.strip())
        ours, named, port = out.stdout.split()
        return int(ours), int(named), None if port == 'None' else int(port)

    def wait_for_log(self, needle):
        found = self.server.stderr.wait_for(lambda line: needle in line,
                                            timeout=10)
        self.assertIsNotNone(found, 'no log line with %r\n%s'
                             % (needle, self.server.log()))

    def test_caller_naming_itself_is_translated(self):
        ours, named, port = self.run_in_pid_namespace()
        self.assertNotEqual(ours, named, 'not in a nested pid namespace')
        self.assertIn(port, self.pool)
        self.wait_for_log('Request on behalf of pid %d: port %d (pid %d in '
                          "the caller's pid namespace is %d here)"
                          % (ours, port, named, ours))

    def test_unrelated_pid_is_never_matched(self):
        # The caller names our own pid, which no process of its namespace
        # has: denied, as a pid that does not exist outside a namespace, and
        # never leased to us (nor to the short-lived caller).
        ours, named, port = self.run_in_pid_namespace(os.getpid())
        self.assertEqual(named, os.getpid())
        self.assertIsNone(port)
        self.wait_for_log('Request on behalf of pid %d: denied '
                          "(no-such-process) (no process of the caller's pid "
                          'namespace has pid %d)' % (named, named))


class PermissionTest(ServerTestCase):
    """A caller other than root may only ask for its own user's processes."""
    POOL = '20270-20279'
    NOBODY = 65534

    def ask_as_nobody(self, pid):
        script = ('import portpicker, sys\n'
                  'print(portpicker.get_port_from_port_server(sys.argv[1], '
                  'pid=int(sys.argv[2])))\n')
        def become_nobody():
            os.setgid(self.NOBODY)
            os.setuid(self.NOBODY)
        try:
            out = subprocess.run(['/usr/bin/python3', '-c', script, self.addr,
                                  str(pid)], capture_output=True, text=True,
                                 timeout=30, preexec_fn=become_nobody)
        except subprocess.SubprocessError as error:
            self.skipTest('cannot run as uid %d here: %s' % (self.NOBODY, error))
        return out.stdout.strip()

    def test_other_users_pid_is_denied_own_is_granted(self):
        if os.geteuid() != 0:
            self.skipTest('needs root to switch to uid %d' % self.NOBODY)
        # Our own process runs as root: nobody may not lease for it.
        self.assertEqual(self.ask_as_nobody(os.getpid()), 'None')
        # A process of nobody's own: granted.
        nobody_child = subprocess.Popen(
            ['sleep', '600'], preexec_fn=lambda: (os.setgid(self.NOBODY),
                                                   os.setuid(self.NOBODY)))
        try:
            self.assertIn(int(self.ask_as_nobody(nobody_child.pid)), self.pool)
        finally:
            nobody_child.kill()
            nobody_child.wait()
        # Root may lease for anyone.
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool))


class ReclaimTest(ServerTestCase):
    POOL = '20200-20207'

    def test_ports_of_dead_process_come_back(self):
        child = spawn_sleeper(self)
        leased = set()
        for i in range(len(self.pool)):
            port = portpicker.get_port_from_port_server(self.addr,
                                                        pid=child.pid)
            self.assertIsNotNone(port, 'request %d for live child pid %d '
                                 'denied\n%s' % (i + 1, child.pid,
                                                 self.server.log()))
            self.assertNotIn(port, leased, 'port %d handed twice to pid %d'
                             % (port, child.pid))
            leased.add(port)
        self.assertEqual(leased, self.pool)
        # All ports belong to a live process: our own pid gets nothing.
        self.assert_denied(self.addr, os.getpid())
        child.kill()
        child.wait()
        again = set()
        for i in range(len(self.pool)):
            port = ask(self.addr, os.getpid(), self.pool)
            self.assertIsNotNone(
                port, 'after child pid %d died (and was reaped), request %d '
                'for our pid %d was denied: the dead process\'s ports did '
                'not come back\n%s' % (child.pid, i + 1, os.getpid(),
                                       self.server.log()))
            self.assertNotIn(port, again, 'port %d handed twice to pid %d'
                             % (port, os.getpid()))
            again.add(port)
        self.assertEqual(again, leased)
        self.assert_denied(self.addr, os.getpid())

    def test_ports_come_back_as_soon_as_the_owner_dies(self):
        # Not a feature of the reference server, which reclaims only when a
        # later request's scan reaches a port: ours watches owners (pidfd)
        # and takes their ports back as they exit, with no request at all.
        server = self.start_server('20220-20223', extra_args=['--verbose'])
        child = spawn_sleeper(self)
        for _ in range(4):
            self.assertIsNotNone(ask(server.address, child.pid, server.pool))
        start = server.stderr.count()
        child.kill()
        child.wait()
        needle = 'Owner pid %d exited: 4 port(s) back in the pool' % child.pid
        found = server.stderr.wait_for(lambda line: needle in line,
                                       start=start, timeout=10)
        self.assertIsNotNone(found, 'no "%s" in the log without a request\n%s'
                             % (needle, server.log()))
        self.assertEqual(server.stats()['total-allocations'], 4)

    def test_round_robin_does_not_reuse_freed_port_first(self):
        # Each port's owner is dead before the next request: a round-robin
        # pool still walks through every port before handing one out again.
        sequence = []
        for _ in range(2 * len(self.pool)):
            child = spawn_sleeper(self)
            port = ask(self.addr, child.pid, self.pool)
            self.assertIsNotNone(port, 'request for live child %d denied\n%s'
                                 % (child.pid, self.server.log()))
            sequence.append(port)
            child.kill()
            child.wait()
        n = len(self.pool)
        self.assertEqual(sorted(sequence[:n]), sorted(self.pool),
                         'with every previous owner dead, the first %d grants '
                         'should visit every port once (round-robin); got %r'
                         % (n, sequence))
        self.assertEqual(sequence[n:], sequence[:n],
                         'round-robin order should repeat; got %r' % sequence)


# --------------------------------------------------------------------------
# 4. Denied pids.

class DenialTest(ServerTestCase):
    POOL = '20300-20304'

    def test_invalid_and_nonexistent_pids_are_denied(self):
        missing = find_nonexistent_pid()
        for pid in (1, 0, -5, missing):
            if pid == missing:
                with self.assertRaises(ProcessLookupError):
                    os.kill(pid, 0)
            self.assert_denied(self.addr, pid)
        self.assert_stats({'denied-allocations': 4,
                           'client-request-errors': 0,
                           'total-allocations': 0})
        # The server still serves.
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool))
        self.assert_stats({'total-allocations': 1})

    def test_huge_pids_close_promptly(self):
        # The reference server hangs on 2147483648; ours must close at once.
        # A server that truncates to 32 or 64 bits would turn the last two
        # into our own (live) pid and grant a port.
        me = os.getpid()
        huge = [2147483648, 2147483647, 4294967296 + me,
                9223372036854775808, 18446744073709551616 + me]
        for pid in huge:
            payload = ('%d\n' % pid).encode('ascii')
            got = raw_exchange(self.addr, payload, stop_at_newline=False)
            self.assertIsInstance(
                got, Closed, 'request %r (no such process): expected a close '
                'without reply, got %r\n%s' % (payload, got,
                                               self.server.log()))
        stats = self.server.stats()
        self.assertEqual(stats['total-allocations'], 0, stats)
        deadline = time.monotonic() + 5
        while (stats['denied-allocations'] + stats['client-request-errors']
               != len(huge) and time.monotonic() < deadline):
            time.sleep(0.05)
            stats = self.server.stats()
        self.assertEqual(
            stats['denied-allocations'] + stats['client-request-errors'],
            len(huge), 'each huge pid must count as a denial or a request '
            'error: %r\n%s' % (stats, self.server.log()))
        self.assertIsNotNone(ask(self.addr, me, self.pool),
                             'server stopped serving\n%s' % self.server.log())


# --------------------------------------------------------------------------
# 5. Garbage requests.

GARBAGE = [b'abc\n', b'', b'\x00\xff\n', b'12345678901234567890123\n',
           b'-\n', b'1 2\n']


class GarbageTest(ServerTestCase):
    POOL = '20400-20409'

    def test_garbage_is_closed_counted_and_server_keeps_serving(self):
        grants = 0
        for payload in GARBAGE:
            # b'' can only be recognised at EOF: half-close every request.
            self.assert_closed_without_reply(self.addr, payload,
                                             half_close=True)
            port = ask(self.addr, os.getpid(), self.pool)
            self.assertIsNotNone(port, 'after garbage %r a valid request was '
                                 'denied\n%s' % (payload, self.server.log()))
            grants += 1
        self.assert_stats({'client-request-errors': len(GARBAGE),
                           'total-allocations': grants,
                           'denied-allocations': 0})

    def test_garbage_without_half_close_does_not_hang(self):
        for payload in [g for g in GARBAGE if g.endswith(b'\n')]:
            self.assert_closed_without_reply(self.addr, payload)
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool))
        self.assert_stats({'client-request-errors':
                           len([g for g in GARBAGE if g.endswith(b'\n')]),
                           'total-allocations': 1})


# --------------------------------------------------------------------------
# 6. Statistics.

class StatsTest(ServerTestCase):
    POOL = '20500-20506'

    def test_sigusr1_dumps_all_statistics(self):
        stats = self.server.stats()
        self.assertEqual(stats, {'client-request-errors': 0,
                                 'denied-allocations': 0,
                                 'num-ports-managed': 7,
                                 'num-ports-checked-for-last-request': 0,
                                 'total-allocations': 0},
                         'statistics of a fresh server\n%s'
                         % self.server.log())
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool))
        self.assert_denied(self.addr, 1)
        self.assert_closed_without_reply(self.addr, b'junk\n')
        self.assert_stats({'client-request-errors': 1,
                           'denied-allocations': 1,
                           'num-ports-managed': 7,
                           'num-ports-checked-for-last-request': 1,
                           'total-allocations': 1})
        # Still serving after the signals.
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool))

    def test_multiple_ranges(self):
        server = self.start_server('20550-20551,20555-20556,20560-20560')
        self.assertEqual(server.stats()['num-ports-managed'], 5,
                         server.log())
        got = set()
        for _ in range(5):
            port = ask(server.address, os.getpid(), server.pool)
            self.assertIsNotNone(port, server.log())
            got.add(port)
        self.assertEqual(got, server.pool)
        self.assert_denied(server.address, os.getpid(), server=server)

    def test_default_pool(self):
        address = new_address()
        server = self.start_server(
            None, address=address,
            flag_args=['--portserver_address=' + address])
        self.assertEqual(server.stats()['num-ports-managed'], 10000,
                         server.log())
        port = ask(server.address, os.getpid())
        self.assertIsNotNone(port, server.log())
        self.assertTrue(15000 <= port <= 24999,
                        'default pool is 15000-24999, got %d' % port)


# --------------------------------------------------------------------------
# 7. Flags and start-up errors.

BAD_POOLS = [('1-', '1-'), ('5-3', '5-3'), ('0-10', '0-10'),
             ('70000-70001', '70000-70001'), ('abc', 'abc'),
             ('100-200,150-160', '150-160')]


class FlagsTest(ServerTestCase):
    POOL = '20600-20603'

    def assert_usage_error(self, args, mention):
        status, stdout, stderr = run_binary(args)
        context = ('command %r\nexit status: %s\nstdout: %r\nstderr: %r' %
                   ([PORTSERVER_BIN] + list(args), status, stdout, stderr))
        self.assertEqual(status, 2, 'expected exit status 2\n' + context)
        lines = [l for l in stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1,
                         'expected exactly one non-empty stderr line\n'
                         + context)
        self.assertTrue(lines[0].startswith(ERROR_PREFIX),
                        'the line must start with %r\n%s' %
                        (ERROR_PREFIX, context))
        self.assertIn(mention.lower(), lines[0].lower(),
                      'the error must mention %r\n%s' % (mention, context))
        self.assertNotIn('Serving on', stderr + stdout, context)
        return lines[0]

    def test_bad_pools(self):
        for form in ('equals', 'space'):
            for pool, mention in BAD_POOLS:
                with self.subTest(pool=pool, form=form):
                    if form == 'equals':
                        args = ['--portserver_static_pool=' + pool]
                    else:
                        args = ['--portserver_static_pool', pool]
                    self.assert_usage_error(
                        args + ['--portserver_address=' + new_address()],
                        mention)

    def test_unknown_flag(self):
        self.assert_usage_error(
            ['--no_such_flag', '--portserver_static_pool=' + self.POOL,
             '--portserver_address=' + new_address()], 'no_such_flag')

    def test_address_in_use(self):
        self.assert_usage_error(
            ['--portserver_static_pool=20610-20611',
             '--portserver_address=' + self.addr], 'in use')
        # The first server is undisturbed.
        self.assertIsNotNone(ask(self.addr, os.getpid(), self.pool),
                             self.server.log())

    def test_help(self):
        for flag in ('-h', '--help'):
            with self.subTest(flag=flag):
                status, stdout, stderr = run_binary([flag])
                context = 'exit %s\nstdout: %r\nstderr: %r' % (status, stdout,
                                                                 stderr)
                self.assertEqual(status, 0, context)
                for name in ('--portserver_static_pool', '--portserver_address',
                             '--portserver_unix_socket_address', '--verbose',
                             '--debug', '--help'):
                    self.assertIn(name, stdout, 'usage on stdout must mention '
                                  '%s\n%s' % (name, context))
                self.assertNotIn('Serving on', stdout + stderr, context)

    def test_space_form_alias_verbose_debug(self):
        address = new_address()
        server = self.start_server(
            '20620-20622',
            address=address,
            flag_args=['--portserver_static_pool', '20620-20622',
                       '--portserver_unix_socket_address', address,
                       '--verbose', '--debug'])
        self.assertEqual(server.stats()['num-ports-managed'], 3, server.log())
        self.assertIsNotNone(
            portpicker.get_port_from_port_server(address, pid=os.getpid()),
            server.log())
        address2 = new_address()
        server2 = self.start_server(
            '20625-20626', address=address2,
            flag_args=['--portserver_unix_socket_address=' + address2,
                       '--portserver_static_pool=20625-20626'])
        self.assertIn(ask(address2, os.getpid()), server2.pool, server2.log())

    def test_abbreviated_flags_as_argparse(self):
        # The reference parses with argparse, which takes any unambiguous
        # prefix of a long flag: a unit file written for it may say
        # --portserver_static= and --portserver_addr= (a new user's trial:
        # ours exited 2).
        address = new_address()
        server = self.start_server(
            '20627-20628', address=address,
            flag_args=['--portserver_static=20627-20628',
                       '--portserver_addr=' + address, '--verb'])
        self.assertIn(ask(address, os.getpid()), server.pool, server.log())
        self.assert_usage_error(
            ['--portserver_=20629', '--portserver_address=' + new_address()],
            'ambiguous')

    def test_default_address(self):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect('\0unittest-portserver')
            self.skipTest('@unittest-portserver is already served here')
        except OSError:
            pass
        finally:
            probe.close()
        server = self.start_server('20630-20631',
                                   address='@unittest-portserver',
                                   flag_args=['--portserver_static_pool='
                                              '20630-20631'])
        self.assertIn(
            portpicker.get_port_from_port_server('@unittest-portserver',
                                                 pid=os.getpid()),
            server.pool, server.log())

    def test_sigint_exits_zero(self):
        status = self.server.stop(signal.SIGINT)
        self.assertEqual(status, 0, 'exit status after SIGINT\n%s'
                         % self.server.log())

    def test_sigterm_exits_zero_and_releases_address(self):
        status = self.server.stop(signal.SIGTERM)
        self.assertEqual(status, 0, 'exit status after SIGTERM\n%s'
                         % self.server.log())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self.assertRaises(OSError, msg='address still served after '
                                   'the server exited'):
                s.connect(sockaddr(self.addr))
        finally:
            s.close()
        # The address can be served again at once.
        again = self.start_server(self.POOL, address=self.addr)
        self.assertIn(ask(self.addr, os.getpid()), again.pool, again.log())


# --------------------------------------------------------------------------
# 8. Filesystem path address.

class PathAddressTest(ServerTestCase):
    POOL = None

    def test_path_address(self):
        base = os.environ.get('TEST_TMPDIR') or tempfile.gettempdir()
        directory = tempfile.mkdtemp(prefix='psc', dir=base)
        path = os.path.join(directory, 'portserver.sock')
        if len(path.encode()) > 100:  # sun_path is 108 bytes
            directory = tempfile.mkdtemp(prefix='psc')
            path = os.path.join(directory, 'portserver.sock')
        server = self.start_server('20700-20704', address=path)
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode),
                        '%s is not a socket while serving' % path)
        port = portpicker.pick_unused_port(portserver_address=path)
        self.assertIn(port, server.pool, server.log())
        self.assertIn(ask(path, os.getpid()), server.pool, server.log())
        status = server.stop(signal.SIGTERM)
        self.assertEqual(status, 0, server.log())
        self.assertFalse(os.path.lexists(path),
                         'socket file %s still exists after SIGTERM\n%s'
                         % (path, server.log()))


# --------------------------------------------------------------------------
# 9. Concurrent clients.

class ConcurrencyTest(ServerTestCase):
    POOL = '21000-21199'
    THREADS = 32
    PER_THREAD = 5

    def test_concurrent_clients_get_distinct_ports(self):
        pid = os.getpid()
        barrier = threading.Barrier(self.THREADS)
        results = [[] for _ in range(self.THREADS)]
        errors = []

        def worker(i):
            try:
                barrier.wait(timeout=30)
                for _ in range(self.PER_THREAD):
                    results[i].append(
                        portpicker.get_port_from_port_server(self.addr,
                                                             pid=pid))
            except Exception as e:  # pylint: disable=broad-except
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,))
                   for i in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse([t for t in threads if t.is_alive()],
                         'client threads hung\n%s' % self.server.log())
        self.assertEqual(errors, [])
        ports = [p for r in results for p in r]
        total = self.THREADS * self.PER_THREAD
        self.assertEqual(len(ports), total)
        self.assertNotIn(None, ports, '%d of %d concurrent requests denied\n%s'
                         % (ports.count(None), total, self.server.log()))
        dupes = sorted({p for p in ports if ports.count(p) > 1})
        self.assertEqual(dupes, [], 'ports handed out more than once')
        self.assertTrue(set(ports) <= self.pool,
                        'ports outside the pool: %r' %
                        sorted(set(ports) - self.pool))
        self.assert_stats({'total-allocations': total,
                           'client-request-errors': 0,
                           'denied-allocations': 0})


if __name__ == '__main__':
    junit_runner.main('compat_test', _argv)
