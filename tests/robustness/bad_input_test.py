#!/usr/bin/python3
"""Bad input: a sweep of malformed, hostile and half-done requests.

Every bad input must be closed without a reply (or, where the bytes do form
a pid, be decided like any request), and be followed by a valid request on
behalf of a live child that the server still answers. At the end the
statistics account for every input, the server's open descriptors are back
to their baseline and SIGTERM still stops it with status 0.
"""

import os
import random
import resource
import selectors
import signal
import socket
import time

import harness

READ_TIMEOUT_MS = 300
MAX_CONNECTIONS = 1024
IDLE_CONNECTIONS = 2000
FLOOD_CONNECTIONS = 2000
EOF_DEADLINE = 5.0        # a connection the server must close, closes by then

# Kinds of outcome, and the statistic each one increments.
MALFORMED, GRANTED, INVALID_PID, NO_SUCH_PROCESS = (
    'client-request-errors', 'total-allocations', 'denied-invalid-pid',
    'denied-no-such-process')


def setUpModule():
    # Thousands of idle connections: raise our own descriptor limit (the
    # servers started afterwards inherit it, so the cap they are given,
    # not their descriptor limit, is what refuses connections).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 200:
        raise AssertionError('RLIMIT_NOFILE hard limit %d is too low for %d '
                             'connections' % (hard, IDLE_CONNECTIONS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(address, timeout=EOF_DEADLINE):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(harness.sockaddr(address))
    return sock


def wait_all_closed(socks, deadline):
    """Waits until the server has closed every socket without a byte.
    Returns (closed, still open, sockets that received data)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed, talked = 0, []
    pending = len(socks)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0, deadline - time.monotonic())):
            try:
                data = key.fileobj.recv(64)
            except ConnectionResetError:
                data = b''
            except BlockingIOError:
                continue
            if data:
                talked.append(data)
            else:
                closed += 1
            sel.unregister(key.fileobj)
            pending -= 1
    sel.close()
    return closed, pending, talked


class BadInputTest(harness.ServerTestCase):
    POOL = '33000-33499'

    def setUp(self):
        super().setUp()
        self.expected = {MALFORMED: 0, GRANTED: 0, INVALID_PID: 0,
                         NO_SUCH_PROCESS: 0}
        self.tried = 0

    def check_alive(self, after):
        port = harness.ask(self.server.address, self.child.pid)
        self.assertIsNotNone(port, 'after %s: a valid request for live pid %d '
                             'was denied\n%s' % (after, self.child.pid,
                                                 self.server.log()))
        self.assertIn(port, self.server.pool)
        self.expected[GRANTED] += 1

    def send(self, label, payload, expect, half_close=False):
        """One bad input on its own connection, then a valid request."""
        started = time.monotonic()
        got = harness.raw_exchange(self.server.address, payload,
                                   half_close=half_close,
                                   timeout=EOF_DEADLINE)
        elapsed = time.monotonic() - started
        self.tried += 1
        context = ('input %s (%r%s, %d bytes%s): expected %s, got %r after '
                   '%.3f s\n%s' % (label, payload[:40],
                                   '...' if len(payload) > 40 else '',
                                   len(payload),
                                   ', write side shut' if half_close else '',
                                   'a port' if expect == GRANTED else
                                   'a close without reply (%s)' % expect,
                                   got, elapsed, self.server.log(tail=30)))
        if expect == GRANTED:
            self.assertIn(harness.parse_reply(payload, got),
                          self.server.pool, context)
        else:
            self.assertIsInstance(got, harness.Closed, context)
        self.expected[expect] += 1
        self.check_alive(label)
        return elapsed

    def stats_delta(self, before, expected_keys, predicate, timeout=5.0):
        """Polls the statistics until predicate(delta) holds; the delta."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.server.stats()
            delta = {k: stats[k] - before[k] for k in expected_keys}
            if predicate(delta) or time.monotonic() > deadline:
                return stats, delta
            time.sleep(0.05)

    def test_sweep(self):
        server = self.server = self.start_server(
            self.POOL, args=['--portserver_state_file=none',
                             '--portserver_read_timeout_ms=%d' %
                             READ_TIMEOUT_MS,
                             '--portserver_max_connections=%d' %
                             MAX_CONNECTIONS])
        self.child = self.owner()
        child = self.child.pid
        nopid = harness.find_nonexistent_pid()
        self.check_alive('startup')
        fds_baseline = harness.fd_count(server.pid)
        rng = random.Random(20241126)

        # --- Plain bad requests, each on its own connection.
        cases = [
            ('empty, write side shut', b'', MALFORMED, True),
            ('space', b' ', MALFORMED, True),
            ('tab newline', b'\t\n', MALFORMED, False),
            ('leading space', b' 123\n', MALFORMED, False),
            ('trailing space', b'%d \n' % child, MALFORMED, False),
            ('newline only', b'\n', MALFORMED, False),
            ('CR LF only', b'\r\n', MALFORMED, False),
            ('plus sign', b'+5\n', MALFORMED, False),
            ('double minus', b'--5\n', MALFORMED, False),
            ('minus only', b'-\n', MALFORMED, False),
            ('minus space', b'- 5\n', MALFORMED, False),
            ('hex', b'0x10\n', MALFORMED, False),
            ('exponent', b'1e3\n', MALFORMED, False),
            ('inner space', b'1 2\n', MALFORMED, False),
            ('letters after digits', b'%da\n' % child, MALFORMED, False),
            ('fullwidth digits', '\uff15\n'.encode('utf-8'), MALFORMED,
             False),
            ('int64 max + 1', b'9223372036854775808\n', MALFORMED, False),
            ('20 nines', b'99999999999999999999\n', MALFORMED, False),
            ('int64 min (21 bytes)', b'-9223372036854775808\n', MALFORMED,
             False),
            ('live pid padded to 21 bytes', b'%020d\n' % child, MALFORMED,
             False),
            ('1 MB of digits', b'1' * (1 << 20), MALFORMED, True),
            ('1 MB of digits and a newline', b'7' * (1 << 20) + b'\n',
             MALFORMED, False),
            ('100 KB of garbage', bytes(rng.randrange(14, 256)
                                        for _ in range(100 << 10)),
             MALFORMED, True),
            ('NULs', b'\0' * 10, MALFORMED, True),
            ('NUL newline', b'\0\n', MALFORMED, False),
            ('pid then NUL', b'%d\0\n' % child, MALFORMED, False),
            ('NUL then pid', b'\0%d\n' % child, MALFORMED, False),
            # Inputs that do form a pid are decided like any request.
            ('minus five', b'-5\n', INVALID_PID, False),
            ('zero', b'0\n', INVALID_PID, False),
            ('minus zero', b'-0\n', INVALID_PID, False),
            ('pid 1 (init)', b'1\n', INVALID_PID, False),
            ('int64 max', b'9223372036854775807\n', NO_SUCH_PROCESS, False),
            ('no such pid', b'%d\n' % nopid, NO_SUCH_PROCESS, False),
            ('partial no such pid, write side shut', b'%d' % nopid,
             NO_SUCH_PROCESS, True),
            ('partial live pid, write side shut', b'%d' % child, GRANTED,
             True),
            ('live pid with CR LF', b'%d\r\n' % child, GRANTED, False),
            ('live pid zero-padded to 20 bytes', b'%019d\n' % child, GRANTED,
             False),
        ]
        for i in range(12):
            n = rng.choice((1, 2, 7, 19, 20, 21, 64, 4096))
            data = bytes([rng.choice([b for b in range(256)
                                      if b not in b'0123456789-'])]) + \
                rng.randbytes(n - 1)
            cases.append(('random bytes #%d' % i, data, MALFORMED,
                          rng.random() < 0.5))
        for label, payload, expect, half_close in cases:
            self.send(label, payload, expect, half_close)

        # --- Requests the server must time out (read timeout 300 ms).
        waits = []
        waits.append(self.send('"12" then nothing', b'12', MALFORMED))
        waits.append(self.send('idle connection', b'', MALFORMED))
        waits.append(self.send('live pid without newline, held',
                               b'%d' % child, MALFORMED))
        for elapsed in waits:
            self.assertGreaterEqual(elapsed, READ_TIMEOUT_MS / 1000.0 * 0.9,
                                    'closed before the read timeout')
        # A slow client that never finishes: one digit every 50 ms.
        sock = connect(server.address)
        started = time.monotonic()
        sent = 0
        try:
            while time.monotonic() - started < 3 * READ_TIMEOUT_MS / 1000.0:
                sock.sendall(b'1')
                sent += 1
                time.sleep(0.05)   # input pacing, not synchronisation
        except (BrokenPipeError, ConnectionResetError):
            pass
        closed, pending, talked = wait_all_closed(
            [sock], time.monotonic() + EOF_DEADLINE)
        sock.close()
        self.assertEqual((closed, talked), (1, []), 'slow client (%d bytes '
                         'over %.1f s) not closed without reply' %
                         (sent, time.monotonic() - started))
        self.expected[MALFORMED] += 1
        self.tried += 1
        self.check_alive('slow client')
        # A slow client that finishes within the timeout is served.
        sock = connect(server.address)
        for byte in b'%d\n' % child:
            sock.sendall(bytes([byte]))
            time.sleep(0.01)       # input pacing, not synchronisation
        reply = b''
        while True:
            chunk = sock.recv(64)
            if not chunk:
                break
            reply += chunk
        sock.close()
        self.assertIn(harness.parse_reply(b'%d\n' % child, reply),
                      server.pool, 'byte-by-byte request')
        self.expected[GRANTED] += 1
        self.tried += 1

        keys = list(self.expected) + ['refused-connections',
                                      'denied-allocations']
        stats = self.assert_stats(server, dict(self.expected))

        # --- A flood of connect-then-close: each connection the server
        # reads is an empty request (an error); one it refuses over the cap
        # is a refused connection.
        for _ in range(FLOOD_CONNECTIONS):
            connect(server.address).close()
        before = stats
        stats, delta = self.stats_delta(
            before, keys, lambda d: d[MALFORMED] + d['refused-connections']
            == FLOOD_CONNECTIONS)
        self.assertEqual(
            delta[MALFORMED] + delta['refused-connections'], FLOOD_CONNECTIONS,
            'flood of %d connect-then-close: errors + refused = %r\n%s' %
            (FLOOD_CONNECTIONS, delta, server.log(tail=30)))
        self.expected[MALFORMED] += delta[MALFORMED]
        self.tried += FLOOD_CONNECTIONS
        self.check_alive('flood of connect-then-close')
        flood_refused = delta['refused-connections']

        # --- Idle connections by the thousand, held open by us.
        before = server.stats()
        idle = []
        try:
            for _ in range(IDLE_CONNECTIONS):
                idle.append(connect(server.address))
            opened = time.monotonic()
            # While they are all open on our side, a valid request is
            # answered: over the cap a connection is closed unread, but the
            # idle ones the server accepted expire after the read timeout.
            attempts, port = 0, None
            while port is None and time.monotonic() < opened + EOF_DEADLINE:
                attempts += 1
                port = harness.ask(server.address, child)
                if port is None:
                    time.sleep(0.02)   # retry pacing
            served_after = time.monotonic() - opened
            self.assertIsNotNone(port, 'no valid request served within %.0f '
                                 's of opening %d idle connections (%d '
                                 'attempts)\n%s' % (EOF_DEADLINE,
                                                    IDLE_CONNECTIONS, attempts,
                                                    server.log(tail=30)))
            self.expected[GRANTED] += 1
            closed, pending, talked = wait_all_closed(
                idle, opened + EOF_DEADLINE + READ_TIMEOUT_MS / 1000.0)
            self.assertEqual((pending, talked), (0, []), '%d of %d idle '
                             'connections not closed by the server, %d got '
                             'bytes' % (pending, len(idle), len(talked)))
        finally:
            for s in idle:
                s.close()
        stats, delta = self.stats_delta(
            before, keys, lambda d: d[MALFORMED] + d['refused-connections']
            == IDLE_CONNECTIONS + attempts - 1)
        self.assertGreater(delta['refused-connections'], 0,
                           'no connection refused with %d open and a cap of '
                           '%d: %r' % (IDLE_CONNECTIONS, MAX_CONNECTIONS,
                                       delta))
        self.assertEqual(delta[GRANTED], 1, delta)
        self.assertEqual(delta['denied-allocations'], 0, delta)
        self.assertEqual(delta[MALFORMED] + delta['refused-connections'],
                         IDLE_CONNECTIONS + attempts - 1,
                         'every idle connection must time out (an error) or '
                         'be refused, and every failed valid attempt be '
                         'refused: %r' % delta)
        self.expected[MALFORMED] += delta[MALFORMED]
        self.tried += IDLE_CONNECTIONS
        self.check_alive('idle connections')

        # --- The totals: every input is accounted for.
        stats = self.assert_stats(server, dict(self.expected))
        # Each leased port holds its lock, a descriptor (README, Guarantees).
        fds_allowed = fds_baseline + stats['leased-ports']
        fds_end = harness.poll_until(
            lambda: harness.fd_count(server.pid) <= fds_allowed, 5.0)
        fds_now = harness.fd_count(server.pid)
        print('\nbad input figures: %d inputs tried (%d distinct crafted, '
              '%d connect-then-close, %d idle); expected %r; idle: first '
              'valid request served after %.3f s and %d attempt(s), %d '
              'refused; flood refused %d; fds baseline %d, end %d; stats %r'
              % (self.tried, len(cases) + 5, FLOOD_CONNECTIONS,
                 IDLE_CONNECTIONS, self.expected, served_after, attempts,
                 delta['refused-connections'], flood_refused, fds_baseline,
                 fds_now, stats))
        self.assertTrue(fds_end, 'server fds: %d at baseline, %d at the end, '
                        '%d allowed with the leased ports\' locks: %s' % (
                            fds_baseline, fds_now, fds_allowed, sorted(
                            os.readlink('/proc/%d/fd/%s' % (server.pid, fd))
                            for fd in os.listdir('/proc/%d/fd' %
                                                 server.pid))))
        status = server.stop(signal.SIGTERM)
        self.assertEqual(status, 0, 'exit status after SIGTERM\n%s'
                         % server.log(tail=30))

    def test_quota(self):
        server = self.server = self.start_server(
            '33500-33509', args=['--portserver_state_file=none',
                                 '--portserver_max_ports_per_pid=3'])
        owner, other = self.owner(), self.owner()
        got = [harness.ask(server.address, owner.pid) for _ in range(3)]
        self.assertNotIn(None, got, server.log())
        self.assertEqual(len(set(got)), 3, got)
        self.assertIsNone(harness.ask(server.address, owner.pid),
                          'the 4th request for pid %d was not denied with '
                          '--portserver_max_ports_per_pid=3\n%s'
                          % (owner.pid, server.log()))
        self.assertIsNotNone(harness.ask(server.address, other.pid),
                             'another live pid must still be served')
        self.assert_stats(server, {'denied-quota': 1,
                                   'denied-allocations': 1,
                                   'total-allocations': 4})
        # Once the owner is gone, its quota is, too.
        harness.kill_owner(owner)
        again = self.owner()
        got = [harness.ask(server.address, again.pid) for _ in range(3)]
        self.assertNotIn(None, got, server.log())
        self.assertIsNone(harness.ask(server.address, again.pid))
        self.assert_stats(server, {'denied-quota': 2})

    def test_descriptor_exhaustion(self):
        """A server out of file descriptors neither dies nor spins, and
        serves again once its connections expire."""
        timeout_ms = 2000

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

        server = self.server = self.start_server(
            '33600-33699', args=['--portserver_state_file=none',
                                 '--portserver_read_timeout_ms=%d'
                                 % timeout_ms],
            preexec_fn=low_limit)
        child = self.owner()
        self.assertIsNotNone(harness.ask(server.address, child.pid))
        # The owner's exit watch (a pidfd) is taken once the reply is out,
        # before the server reads its next request: a denied request (pid
        # 0) answered means it is there.
        self.assertIsNone(harness.ask(server.address, 0))
        fds_baseline = harness.fd_count(server.pid)

        def cpu_seconds():
            with open('/proc/%d/stat' % server.pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf(
                'SC_CLK_TCK')

        idle = []
        try:
            for _ in range(300):
                idle.append(connect(server.address))
            cpu_before = cpu_seconds()
            opened = time.monotonic()
            # While the server holds ~60 idle connections at its limit, a
            # request cannot be served; it must be once they expire.
            attempts, port = 0, None
            while port is None and (time.monotonic() < opened +
                                    timeout_ms / 1000.0 + EOF_DEADLINE):
                attempts += 1
                port = harness.ask(server.address, child.pid)
                if port is None:
                    time.sleep(0.1)   # retry pacing
            cpu_used = cpu_seconds() - cpu_before
            wall = time.monotonic() - opened
            self.assertIsNotNone(port, 'no request served %.1f s after the '
                                 'descriptor limit was reached\n%s' %
                                 (wall, server.log(tail=30)))
            closed, pending, talked = wait_all_closed(
                idle, time.monotonic() + timeout_ms / 1000.0 + EOF_DEADLINE)
            self.assertEqual((pending, talked), (0, []))
        finally:
            for s in idle:
                s.close()
        print('\ndescriptor exhaustion figures: 300 idle connections to a '
              'server limited to 64 fds; served again after %.2f s and %d '
              'attempts; server CPU %.2f s over that time' %
              (wall, attempts, cpu_used))
        # A server spinning on EMFILE burns a core for the whole 2 s.
        self.assertLess(cpu_used, 0.5, 'server used %.2f s of CPU in %.2f s '
                        'at its descriptor limit (busy loop?)'
                        % (cpu_used, wall))
        # The port granted meanwhile holds its lock, one descriptor.
        self.assertTrue(harness.poll_until(
            lambda: harness.fd_count(server.pid) <= fds_baseline + 1, 5.0),
            'fds: baseline %d (+1 for the lock of the port granted), now %d'
            % (fds_baseline, harness.fd_count(server.pid)))
        self.assertIsNotNone(harness.ask(server.address, child.pid))
        self.assertEqual(server.stop(signal.SIGTERM), 0, server.log(tail=30))


if __name__ == '__main__':
    harness.main('bad_input_test')
