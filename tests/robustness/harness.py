"""Shared helpers of the black-box robustness tests of //app:portserver.

Adapted (copied, not imported) from tests/compat_test.py: the binary comes
from $PORTSERVER_BIN or --portserver_bin=PATH; each server runs on a private
abstract address, its stderr is drained by a thread, startup is detected by
its "Serving on <address>" line and statistics are read after SIGUSR1, all
with bounded waits and no sleeps.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

# tests/junit_runner.py, shared with tests/compat_test.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import junit_runner  # noqa: E402
import testlib  # noqa: E402
# Re-exported: the robustness tests call them as harness.<name>.
from testlib import (Closed, LineCollector, find_nonexistent_pid,  # noqa: E402,F401
                     pool_ports, sockaddr)

PORTSERVER_BIN = os.environ.get('PORTSERVER_BIN', '')
ARGV = [sys.argv[0]]
for _arg in sys.argv[1:]:
    if _arg.startswith('--portserver_bin='):
        PORTSERVER_BIN = _arg.split('=', 1)[1]
    else:
        ARGV.append(_arg)

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 10.0
REPLY_TIMEOUT = 5.0
STATS_TIMEOUT = 10.0

LOG_LINE_RE = re.compile(
    r'^[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+ +\d+ \S+:\d+\] (?P<msg>.*)$')
STAT_NAMES = (
    'client-request-errors', 'denied-allocations', 'num-ports-managed',
    'num-ports-checked-for-last-request', 'total-allocations',
    'denied-invalid-pid', 'denied-no-such-process', 'denied-pool-exhausted',
    'denied-quota', 'refused-connections', 'leased-ports', 'owners',
    'busy-ports-cooling', 'unwatched-owners', 'carried-leases',
    'refusal-lines-suppressed',
    'journal-outages', 'journal-missed-grants', 'journal-rewrites',
    'journal-errors', 'journal-compactions')
LAST_STAT = STAT_NAMES[-1]
STAT_RE = re.compile(r'^(?P<name>%s) (?P<value>\d+)$' %
                     '|'.join(re.escape(n) for n in STAT_NAMES))


def tmpdir():
    return os.environ.get('TEST_TMPDIR') or '/tmp'


# --------------------------------------------------------------------------
# Raw protocol.

def raw_exchange(address, payload, half_close=False, timeout=REPLY_TIMEOUT):
    """Sends `payload` on a new connection; returns the bytes received up to
    EOF (or a Closed if none). AssertionError if not closed within timeout."""
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
            pass  # The server may close before reading everything.
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                return data if data else Closed('reset')
            if not chunk:
                return data if data else Closed('eof')
            data += chunk
    except socket.timeout:
        raise AssertionError(
            'request %r to %s: connection not closed within %.1f s '
            '(received %r)' % (payload[:60], address, timeout, data))
    finally:
        sock.close()


def parse_reply(payload, got):
    """A port (int) for b'<port>\\n', None for a close without reply."""
    if isinstance(got, Closed):
        return None
    m = re.match(rb'^([0-9]+)\n$', got)
    if not m:
        raise AssertionError('request %r: expected b"<port>\\n" or a close '
                             'without reply, got %r' % (payload[:60], got))
    return int(m.group(1))


def ask(address, pid, timeout=REPLY_TIMEOUT):
    """Requests a port for `pid`; the port, or None for a denial."""
    payload = b'%d\n' % pid
    return parse_reply(payload, raw_exchange(address, payload, timeout=timeout))


# --------------------------------------------------------------------------
# Processes.

def spawn_owner():
    """A live process that can own ports until it is killed and reaped."""
    return subprocess.Popen(['sleep', '100000'], stdin=subprocess.DEVNULL)


def kill_owner(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def fd_count(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def memory_kb(pid):
    """{'VmRSS': kB, 'Private_Dirty': kB, 'Anonymous': kB} (the last two if
    smaps_rollup exists). Anonymous is the process's own memory (heap,
    stacks); Private_Dirty also counts page-cache pages of its binary that
    are not written back yet, e.g. right after Bazel linked it."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                out['VmRSS'] = int(line.split()[1])
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                for key in ('Private_Dirty', 'Anonymous'):
                    if line.startswith(key + ':'):
                        out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def poll_until(predicate, timeout, interval=0.02):
    """Polls `predicate` (bounded); returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# Server process.

class Server(object):
    """One //app:portserver process."""

    def __init__(self, pool, address=None, args=(), preexec_fn=None,
                 env=None, cwd=None):
        self.pool = pool_ports(pool)
        self.address = address or new_address()
        # Absolute: the server may run in another directory (cwd).
        self.argv = [os.path.abspath(PORTSERVER_BIN),
                     '--portserver_static_pool=' + pool,
                     '--portserver_address=' + self.address] + list(args)
        self.preexec_fn = preexec_fn
        self.env = env  # None: ours.
        self.cwd = cwd  # None: ours (a relative path address is from it).
        self.proc = None
        self.returncode = None

    def start(self, expect_serving=True):
        """Starts; waits for "Serving on <address>" or the exit."""
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     preexec_fn=self.preexec_fn,
                                     env=self.env, cwd=self.cwd)
        self.stderr = LineCollector(self.proc.stderr)
        self.stdout = LineCollector(self.proc.stdout)
        needle = 'Serving on ' + self.address
        index = self.stderr.wait_for(lambda l: needle in l,
                                     timeout=STARTUP_TIMEOUT)
        if expect_serving and index is None:
            self.kill()
            raise AssertionError('server did not log %r within %.0f s (exit '
                                 'status %s)\n%s' % (needle, STARTUP_TIMEOUT,
                                                     self.returncode,
                                                     self.log()))
        return self

    @property
    def pid(self):
        return self.proc.pid

    @property
    def running(self):
        return self.proc is not None and self.returncode is None

    def log(self, tail=200):
        out = ['---- server: %s' % ' '.join(self.argv), '---- stderr:',
               self.stderr.text(tail=tail) if self.proc else '']
        if self.proc and self.stdout.count():
            out += ['---- stdout:', self.stdout.text(tail=tail)]
        out.append('---- end of server output')
        return '\n'.join(out)

    def _reaped(self):
        self.returncode = self.proc.returncode
        self.stderr.join()
        self.stdout.join()
        return self.returncode

    def wait_exit(self, timeout=EXIT_TIMEOUT):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError('server did not exit within %.0f s\n%s'
                                 % (timeout, self.log()))
        return self._reaped()

    def stop(self, sig=signal.SIGTERM):
        if not self.running:
            return self.returncode
        self.proc.send_signal(sig)
        return self.wait_exit()

    def kill(self):
        """SIGKILL (a crash); returns the exit status."""
        if self.running:
            self.proc.kill()
            self.proc.wait()
            self._reaped()
        return self.returncode

    def stats(self):
        """SIGUSR1; the statistics of that dump as a dict."""
        start = self.stderr.count()
        os.kill(self.proc.pid, signal.SIGUSR1)

        def is_last(line):
            m = LOG_LINE_RE.match(line)
            return bool(m) and m.group('msg').startswith(LAST_STAT + ' ')

        end = self.stderr.wait_for(is_last, start=start, timeout=STATS_TIMEOUT)
        if end is None:
            raise AssertionError('no "%s N" line within %.0f s of SIGUSR1\n%s'
                                 % (LAST_STAT, STATS_TIMEOUT, self.log()))
        with self.stderr.cond:
            lines = self.stderr.lines[start:end + 1]
        stats = {}
        for line in lines:
            m = LOG_LINE_RE.match(line)
            s = STAT_RE.match(m.group('msg')) if m else None
            if s:
                stats[s.group('name')] = int(s.group('value'))
        missing = [n for n in STAT_NAMES if n not in stats]
        if missing:
            raise AssertionError('SIGUSR1 dump lacks %s: %r' % (missing, lines))
        return stats

    def wait_stats(self, expected, timeout=5.0):
        """Polls stats() until the subset `expected` holds; the last dump."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(stats[k] == v for k, v in expected.items()):
                return stats
            if time.monotonic() > deadline:
                return stats
            time.sleep(0.05)


def run_binary(args, timeout=5.0):
    """Runs the binary to completion: (status, stdout, stderr)."""
    return testlib.run_to_completion([PORTSERVER_BIN] + list(args), timeout)


def new_address():
    return testlib.new_address('robust')


class ServerTestCase(unittest.TestCase):
    """Tracks servers and owners; tearDown stops servers (SIGTERM -> 0)."""

    def setUp(self):
        if not PORTSERVER_BIN or not os.access(PORTSERVER_BIN, os.X_OK):
            self.fail('portserver binary not found: %r' % PORTSERVER_BIN)
        self.servers = []
        self.owners = []

    def start_server(self, pool, **kwargs):
        server = Server(pool, **kwargs)
        self.servers.append(server)
        return server.start()

    def owner(self):
        proc = spawn_owner()
        self.owners.append(proc)
        return proc

    def assert_stats(self, server, expected):
        stats = server.wait_stats(expected)
        wrong = {k: (v, stats[k]) for k, v in expected.items()
                 if stats[k] != v}
        self.assertFalse(wrong, 'statistics differ {name: (expected, got)}: '
                         '%r\nall: %r\n%s' % (wrong, stats, server.log()))
        return stats

    def tearDown(self):
        for proc in self.owners:
            kill_owner(proc)
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
                problems.append('server exited %s after SIGTERM (expected 0)'
                                '\n%s' % (status, server.log()))
        if problems:
            self.fail('\n'.join(problems))


# --------------------------------------------------------------------------
# Runner: JUnit XML with one <testcase> per python test (tests/junit_runner.py).

def main(suite_name):
    junit_runner.main(suite_name, ARGV)
