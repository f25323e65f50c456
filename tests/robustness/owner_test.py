"""Black-box tests of //app:portserver (issue 9): who the owner is, and the
drop-in defaults.

  InitOfItsOwnNamespaceTest  pid 1 of its own pid namespace (a container's
                             entrypoint: unshare --pid --fork --mount-proc,
                             host network) asking for itself is served.
  ThreadIdTest               a thread id is not an owner: denied, as the
                             reference (psutil.pid_exists) denies it; a
                             journaled lease of a thread id is not restored.
  NoQuotaByDefaultTest       one process gets its 1,025th port.
  RefusalLogTest             refusals are logged at default verbosity,
                             rate-limited and counted; garbage is not logged.
  ClosedStderrTest           the server outlives a closed stderr.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import harness

DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DIR))
import testlib  # noqa: E402

PYTHON = '/usr/bin/python3'


def log_messages(server, start=0):
    out = []
    with server.stderr.cond:
        lines = server.stderr.lines[start:]
    for line in lines:
        m = harness.LOG_LINE_RE.match(line)
        if m:
            out.append(m.group('msg'))
    return out


class InitOfItsOwnNamespaceTest(harness.ServerTestCase):
    POOL = '34000-34009'

    def ask_as_pid_1(self, server, named):
        """The python client as pid 1 of a pid namespace of its own (as a
        container's entrypoint runs it) asks for `named` (a python
        expression): the port it got, as printed ('None' if denied)."""
        script = ('import os, portpicker\n'
                  'print(os.getpid())\n'
                  'print(portpicker.get_port_from_port_server(%r, '
                  'pid=%s))\n' % (server.address, named))
        status, out, err = testlib.run_to_completion(
            ['unshare', '--pid', '--fork', '--mount-proc', PYTHON, '-c',
             script], timeout=30)
        self.assertEqual(status, 0, 'unshare failed: %s %s' % (out, err))
        pid, port = out.split()
        self.assertEqual(pid, '1', 'the client is not pid 1 of its namespace')
        return port

    def test_pid_1_of_its_own_pid_namespace_is_served(self):
        server = self.start_server(self.POOL)
        # It asks for itself.
        port = self.ask_as_pid_1(server, 'os.getpid()')
        self.assertNotEqual(port, 'None', 'pid 1 of its own namespace was '
                            'denied\n%s' % server.log())
        self.assertIn(int(port), server.pool)
        stats = server.stats()
        self.assertEqual(stats['total-allocations'], 1)

    def test_pid_not_in_the_callers_namespace_is_denied(self):
        # A client in its own pid namespace naming a pid that no process of
        # that namespace has (a typo, a stale pid): denied as it would be
        # outside a namespace, never leased to the short-lived client.
        server = self.start_server(self.POOL)
        port = self.ask_as_pid_1(server, '9999')
        self.assertEqual(port, 'None', 'a pid of nothing was served\n%s' %
                         server.log())
        self.assert_stats(server, {'denied-no-such-process': 1,
                                   'total-allocations': 0})
        self.assertIn("no process of the caller's pid namespace has pid 9999",
                      server.log())

    def test_pid_1_of_our_own_namespace_is_still_denied(self):
        server = self.start_server(self.POOL)
        self.assertIsNone(harness.ask(server.address, 1))
        self.assert_stats(server, {'denied-invalid-pid': 1,
                                   'total-allocations': 0})


def thread_ids_of_helper():
    """A live python process with a second thread: (proc, pid, tid)."""
    proc = subprocess.Popen(
        [PYTHON, '-c',
         'import threading, sys\n'
         'e = threading.Event()\n'
         'def run():\n'
         '    print(threading.get_native_id(), flush=True)\n'
         '    e.wait()\n'
         't = threading.Thread(target=run); t.start()\n'
         'sys.stdin.read()\n'
         'e.set(); t.join()\n'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    tid = int(proc.stdout.readline())
    return proc, proc.pid, tid


def start_time(pid):
    with open('/proc/%d/stat' % pid) as f:
        stat = f.read()
    return int(stat[stat.rindex(')') + 2:].split()[19])


def fnv1a(text):
    h = 2166136261
    for c in text.encode():
        h ^= c
        h = (h * 16777619) & 0xffffffff
    return h


def journal_lease(port, pid, incarnation):
    """A lease record as domain/lease_journal.cc writes it."""
    body = 'L %d %d %d' % (port, pid, incarnation)
    return '%s %08x\n' % (body, fnv1a(body))


class ThreadIdTest(harness.ServerTestCase):
    POOL = '34100-34109'

    def setUp(self):
        super().setUp()
        self.proc, self.pid, self.tid = thread_ids_of_helper()
        self.assertNotEqual(self.pid, self.tid)

    def tearDown(self):
        self.proc.stdin.close()
        self.proc.wait()
        super().tearDown()

    def test_thread_id_is_denied_and_its_process_is_served(self):
        server = self.start_server(self.POOL)
        start = server.stderr.count()
        self.assertIsNone(harness.ask(server.address, self.tid),
                          'a thread id was leased a port: the lease would '
                          'end with the thread\n%s' % server.log())
        needle = 'thread of process %d' % self.pid
        self.assertIsNotNone(
            server.stderr.wait_for(lambda l: needle in l, start=start),
            'the refusal does not say the pid is a thread\n%s' % server.log())
        self.assertIsNotNone(harness.ask(server.address, self.pid))
        self.assert_stats(server, {'denied-no-such-process': 1,
                                   'total-allocations': 1,
                                   'leased-ports': 1})

    def test_journaled_lease_of_a_thread_id_is_not_restored(self):
        journal = os.path.join(harness.tmpdir(), 'thread-%d.journal' %
                               os.getpid())
        with open(journal, 'w') as f:
            f.write('portserver-journal 1\n')
            f.write(journal_lease(34100, self.tid, start_time(self.tid)))
            f.write(journal_lease(34101, self.pid, start_time(self.pid)))
        server = self.start_server(
            self.POOL, args=['--portserver_state_file=' + journal])
        self.assertTrue(any('restored 1 of 2' in m
                            for m in log_messages(server)), server.log())
        self.assert_stats(server, {'leased-ports': 1})


class NoQuotaByDefaultTest(harness.ServerTestCase):
    POOL = '36000-37099'  # 1,100 ports

    def test_one_process_gets_more_than_1024_ports(self):
        server = self.start_server(self.POOL,
                                   args=['--portserver_state_file=none'])
        owner = self.owner()
        got = set()
        for i in range(1100):
            port = harness.ask(server.address, owner.pid)
            self.assertIsNotNone(port, 'request %d of one live process '
                                 'denied (the reference has no quota)\n%s'
                                 % (i + 1, server.log(tail=20)))
            got.add(port)
        self.assertEqual(len(got), 1100)
        self.assertIsNone(harness.ask(server.address, owner.pid))
        self.assert_stats(server, {'denied-quota': 0,
                                   'denied-pool-exhausted': 1})

    def test_quota_stays_available(self):
        server = self.start_server(
            '37100-37109', args=['--portserver_state_file=none',
                                 '--portserver_max_ports_per_pid=2'])
        owner = self.owner()
        self.assertIsNotNone(harness.ask(server.address, owner.pid))
        self.assertIsNotNone(harness.ask(server.address, owner.pid))
        self.assertIsNone(harness.ask(server.address, owner.pid))
        self.assert_stats(server, {'denied-quota': 1})


class RefusalLogTest(harness.ServerTestCase):
    POOL = '34200-34201'

    def test_a_refusal_is_logged_at_default_verbosity(self):
        server = self.start_server(self.POOL,
                                   args=['--portserver_state_file=none'])
        pid = harness.find_nonexistent_pid()
        start = server.stderr.count()
        self.assertIsNone(harness.ask(server.address, pid))
        needle = 'Request on behalf of pid %d: denied (no-such-process)' % pid
        self.assertIsNotNone(
            server.stderr.wait_for(lambda l: needle in l, start=start),
            'no log line for a refusal at default verbosity\n%s'
            % server.log())
        # Pool exhausted, said the same way.
        owner = self.owner()
        harness.ask(server.address, owner.pid)
        harness.ask(server.address, owner.pid)
        self.assertIsNone(harness.ask(server.address, owner.pid))
        needle = 'pid %d: denied (pool-exhausted)' % owner.pid
        self.assertIsNotNone(
            server.stderr.wait_for(lambda l: needle in l, start=start),
            server.log())

    def test_a_flood_of_refusals_is_rate_limited_and_counted(self):
        server = self.start_server(self.POOL,
                                   args=['--portserver_state_file=none'])
        pid = harness.find_nonexistent_pid()
        start = server.stderr.count()
        began = time.monotonic()
        n = 400
        for _ in range(n):
            self.assertIsNone(harness.ask(server.address, pid))
        for _ in range(50):  # Garbage is a flood of its own: never logged.
            harness.raw_exchange(server.address, b'garbage\n')
        elapsed = time.monotonic() - began
        stats = server.stats()
        self.assertEqual(stats['denied-allocations'], n)
        self.assertEqual(stats['client-request-errors'], 50)
        messages = log_messages(server, start)
        logged = [m for m in messages if 'Request on behalf of pid' in m]
        self.assertFalse([m for m in messages if 'Bad request' in m])
        # At most 10 lines a second (windows: elapsed, plus one started
        # before and one cut at the end).
        self.assertLessEqual(len(logged), 10 * (int(elapsed) + 2),
                             '%d refusal lines in %.1f s' %
                             (len(logged), elapsed))
        self.assertEqual(len(logged) + stats['refusal-lines-suppressed'], n,
                         'every refusal is logged or counted')
        self.assertGreater(stats['refusal-lines-suppressed'], 0)


class ClosedStderrTest(harness.ServerTestCase):
    POOL = '34300-34309'

    def test_server_survives_a_closed_stderr(self):
        # `portserver 2>&1 | head -1`: the reader goes away after one line.
        address = harness.new_address()
        proc = subprocess.Popen(
            [harness.PORTSERVER_BIN, '--portserver_static_pool=' + self.POOL,
             '--portserver_address=' + address, '--verbose',
             '--portserver_state_file=none'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            first = b''
            while b'Serving on' not in first:
                line = proc.stderr.readline()
                self.assertTrue(line, 'server exited before serving')
                first += line
            proc.stderr.close()  # Like `head -1` exiting.
            owner = self.owner()
            missing = harness.find_nonexistent_pid()
            for i in range(5):
                port = harness.ask(address, owner.pid)
                self.assertIsNotNone(port, 'request %d after stderr closed: '
                                     'no port (server status %r)'
                                     % (i + 1, proc.poll()))
                self.assertIsNone(harness.ask(address, missing))
                os.kill(proc.pid, signal.SIGUSR1)  # Logs a dump too.
            self.assertIsNone(proc.poll(), 'the server died')
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=harness.EXIT_TIMEOUT), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == '__main__':
    harness.main('owner_test')
