#!/usr/bin/python3
"""Black-box tests of the README's "Guarantees": every port handed out is
bindable by a plain bind(), and stays reserved against the kernel's own port
choices and against neighbouring port servers.

Run by bindable_test.sh inside a network namespace of its own (`unshare -n`,
loopback up), so that the sysctls it sets (net.ipv4.ip_local_port_range,
net.ipv4.ip_local_reserved_ports are per network namespace) and the ports and
abstract names it uses never touch the host. It needs root for that.

The servers are //app:portserver, driven as tests/compat_test.py drives them
(its Server and ServerTestCase are reused). Waits are bounded and follow the
server's log or the kernel's state, never a sleep.
"""

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import compat_test  # tests/compat_test.py: Server, ServerTestCase, ask.
import junit_runner
from testlib import pool_ports

RANGE_PATH = '/proc/sys/net/ipv4/ip_local_port_range'
RESERVED_PATH = '/proc/sys/net/ipv4/ip_local_reserved_ports'
LOOPBACK = {socket.AF_INET: '127.0.0.1', socket.AF_INET6: '::1'}
WILDCARD = {socket.AF_INET: '0.0.0.0', socket.AF_INET6: '::'}


def who(server, port):
    """The reply of `server` to a `who` of `port` (bytes)."""
    return compat_test.raw_exchange(
        server.address, b'portserver/1 who ports=%d\n' % port,
        stop_at_newline=False)


def read_sysctl(path):
    with open(path) as f:
        return f.read().strip()


def write_sysctl(path, value):
    with open(path, 'w') as f:
        f.write(value + '\n')


def plain_bind_error(family, port, kind=socket.SOCK_STREAM):
    """errno of a bind() without SO_REUSEADDR (python's default), or 0."""
    s = socket.socket(family, kind)
    try:
        s.bind((WILDCARD[family], port))
        if kind == socket.SOCK_STREAM:
            s.listen(1)
        return 0
    except OSError as e:
        return e.errno
    finally:
        s.close()


def make_time_wait(family, port):
    """Leaves a socket of `port` in TIME_WAIT on the loopback address.

    A server (SO_REUSEADDR, as most servers set it) accepts one connection
    and closes its side first, so that side goes to TIME_WAIT; the client
    sees the EOF and closes too. Waits (bounded) until a plain bind of the
    port fails with EADDRINUSE, which proves the state is there.
    """
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOOPBACK[family], port))
    listener.listen(1)
    client = socket.create_connection((LOOPBACK[family], port), timeout=5)
    served, _ = listener.accept()
    served.close()  # Active close: this side goes to TIME_WAIT.
    client.settimeout(5)
    if client.recv(1) != b'':
        raise AssertionError('expected EOF from the closed side')
    client.close()
    listener.close()
    deadline = time.monotonic() + 5
    while plain_bind_error(family, port) != errno.EADDRINUSE:
        if time.monotonic() > deadline:
            raise AssertionError('port %d never showed TIME_WAIT' % port)
        time.sleep(0.001)


def dumped_stat(server, name, timeout=10.0):
    """SIGUSR1, then the value of statistic `name` in that dump."""
    start = server.stderr.count()
    os.kill(server.proc.pid, signal.SIGUSR1)
    pattern = re.compile(r'\] %s (\d+)$' % re.escape(name))
    index = server.stderr.wait_for(lambda line: bool(pattern.search(line)),
                                   start=start, timeout=timeout)
    if index is None:
        raise AssertionError('no statistic %r after SIGUSR1\n%s' %
                             (name, server.log()))
    with server.stderr.cond:
        return int(pattern.search(server.stderr.lines[index]).group(1))


def log_lines(server, needle):
    with server.stderr.cond:
        return [line for line in server.stderr.lines if needle in line]


class BindableTestCase(compat_test.ServerTestCase):
    def setUp(self):
        super().setUp()
        self.sysctls = {p: read_sysctl(p) for p in (RANGE_PATH, RESERVED_PATH)}

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for path, value in self.sysctls.items():
                write_sysctl(path, value)


# --------------------------------------------------------------------------
# TIME_WAIT: ports a plain bind() takes come first.

class TimeWaitTest(BindableTestCase):
    def check_family(self, family, pool):
        ports = sorted(pool_ports(pool))
        lingering, free = ports[:-1], ports[-1]
        for port in lingering:
            make_time_wait(family, port)
        server = self.start_server(pool)
        first = compat_test.ask(server.address, os.getpid(), server.pool)
        self.assertEqual(
            first, free, 'ports %s are in TIME_WAIT, %d is free: the free one '
            'must come first\n%s' % (lingering, free, server.log()))
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            for fam in (socket.AF_INET, socket.AF_INET6):
                self.assertEqual(plain_bind_error(fam, first, kind), 0,
                                 'plain bind of port %d failed' % first)
        # Nothing else is free now: the TIME_WAIT ports are better than none.
        fallback = [compat_test.ask(server.address, os.getpid(), server.pool)
                    for _ in lingering]
        self.assertEqual(sorted(fallback), lingering, server.log())
        self.assertEqual(dumped_stat(server, 'time-wait-grants'),
                         len(lingering))
        self.assert_denied(server.address, os.getpid(), server)

    def test_ipv4_time_wait_ports_come_last(self):
        self.check_family(socket.AF_INET, '21000-21003')

    def test_ipv6_time_wait_ports_come_last(self):
        self.check_family(socket.AF_INET6, '21010-21013')

    def check_live_udp_reuseaddr_socket(self, family, pool):
        """UDP has no TIME_WAIT: a port a plain bind() cannot take for UDP is
        used by a live socket (one with SO_REUSEADDR lets another such bind
        in), and is never handed out, not even as the last resort."""
        ports = sorted(pool_ports(pool))
        held = socket.socket(family, socket.SOCK_DGRAM)
        self.addCleanup(held.close)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(('::' if family == socket.AF_INET6 else '0.0.0.0',
                   ports[0]))
        server = self.start_server(pool)
        granted = [compat_test.ask(server.address, os.getpid(), server.pool)
                   for _ in ports]
        self.assertNotIn(ports[0], granted,
                         'port %d, bound by a live UDP socket, was handed out'
                         '\n%s' % (ports[0], server.log()))
        self.assertEqual(sorted(p for p in granted if p is not None),
                         ports[1:], server.log())

    def check_many_in_one_request(self, family, pool):
        """A request for several ports at once (portserver/1 allocate
        count=N) gets the TIME_WAIT ports too when nothing else is free: the
        free port first, then the others, all locked and counted."""
        ports = sorted(pool_ports(pool))
        lingering, free = ports[:-1], ports[-1]
        for port in lingering:
            make_time_wait(family, port)
        server = self.start_server(pool)
        reply = compat_test.raw_exchange(
            server.address, b'portserver/1 allocate pid=%d count=%d\n' %
            (os.getpid(), len(ports)))
        self.assertTrue(reply.startswith(b'portserver/1 ok '),
                        '%r\n%s' % (reply, server.log()))
        granted = [int(p) for p in
                   reply.split(b'ports=')[1].split()[0].split(b',')]
        self.assertEqual(granted[0], free, reply)
        self.assertEqual(sorted(granted[1:]), lingering, reply)
        for port in granted:
            self.assertTrue(lock_is_held(port), (port, server.log()))
        self.assertEqual(dumped_stat(server, 'time-wait-grants'),
                         len(lingering))
        self.assert_denied(server.address, os.getpid(), server)

    def test_ipv4_time_wait_ports_in_one_request(self):
        self.check_many_in_one_request(socket.AF_INET, '21040-21047')

    def test_ipv6_time_wait_ports_in_one_request(self):
        self.check_many_in_one_request(socket.AF_INET6, '21050-21057')

    def test_live_ipv4_udp_socket_with_reuseaddr_is_busy(self):
        self.check_live_udp_reuseaddr_socket(socket.AF_INET, '21020-21022')

    def test_live_ipv6_udp_socket_with_reuseaddr_is_busy(self):
        self.check_live_udp_reuseaddr_socket(socket.AF_INET6, '21030-21032')


# --------------------------------------------------------------------------
# Neighbouring servers: never the same port, whatever their flags.

class NeighbourTest(BindableTestCase):
    def check_pair(self, pool, flags_a, flags_b):
        a = self.start_server(pool, extra_args=flags_a)
        b = self.start_server(pool, extra_args=flags_b)
        granted = []
        for _ in range(len(a.pool)):
            for server in (a, b):
                port = compat_test.ask(server.address, os.getpid(), a.pool)
                if port is not None:
                    granted.append(port)
        twice = sorted({p for p in granted if granted.count(p) > 1})
        self.assertEqual(twice, [], 'ports leased by both servers (%s vs %s)'
                         '\n%s\n%s' % (flags_a, flags_b, a.log(), b.log()))
        self.assertEqual(sorted(granted), sorted(a.pool),
                         'the two servers together lease the whole pool')

    def test_default_server_beside_lock_ports_server(self):
        self.check_pair('21100-21119', (), ('--portserver_lock_ports',))

    def test_lock_ports_server_beside_default_server(self):
        self.check_pair('21120-21139', ('--portserver_lock_ports',), ())

    def test_two_default_servers(self):
        self.check_pair('21140-21159', (), ())

    def check_many_beside_plain(self, pool, many_first):
        """One server gets requests for several ports at once (probed on
        its worker threads), the other plain ones, interleaved: never the
        same port from both, and together the whole pool."""
        many = self.start_server(pool)
        plain = self.start_server(pool)
        granted = []
        for step in range(len(many.pool)):
            order = ((many, plain) if many_first == (step % 2 == 0)
                     else (plain, many))
            for server in order:
                if server is plain:
                    port = compat_test.ask(plain.address, os.getpid(),
                                           plain.pool)
                    granted += [] if port is None else [port]
                    continue
                reply = compat_test.raw_exchange(
                    many.address,
                    b'portserver/1 allocate pid=%d count=5\n' % os.getpid())
                if reply.startswith(b'portserver/1 ok '):
                    granted += [int(p) for p in reply.split(b'ports=')[1]
                                .split()[0].split(b',')]
        twice = sorted({p for p in granted if granted.count(p) > 1})
        self.assertEqual(twice, [], 'ports leased by both servers\n%s\n%s'
                         % (many.log(), plain.log()))
        self.assertEqual(sorted(granted), sorted(many.pool),
                         'the two servers together lease the whole pool')

    def test_many_ports_server_asked_first(self):
        self.check_many_beside_plain('21800-21859', many_first=True)

    def test_plain_server_asked_first(self):
        self.check_many_beside_plain('21860-21919', many_first=False)

    def check_restored_leases_stay_locked(self, pool, stop):
        """A lease restored from the journal holds its port's lock again: a
        neighbour never leases the port while its owner lives."""
        scratch = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))
        self.addCleanup(shutil.rmtree, scratch)
        state = os.path.join(scratch, 'journal')
        flags = ('--portserver_state_file=' + state,)
        owner = compat_test.spawn_sleeper(self)
        a = self.start_server(pool, extra_args=flags)
        leased = compat_test.ask(a.address, owner.pid, a.pool)
        self.assertIsNotNone(leased, a.log())
        stop(a)
        a = self.start_server(pool, address=a.address, extra_args=flags)
        self.assertTrue(log_lines(a, 'restored 1 of 1'), a.log())
        self.assertTrue(lock_is_held(leased),
                        'port %d restored for live pid %d, but its lock is '
                        'free\n%s' % (leased, owner.pid, a.log()))
        b = self.start_server(pool, extra_args=('--portserver_state_file=none',))
        granted = [compat_test.ask(b.address, os.getpid(), b.pool)
                   for _ in b.pool]
        self.assertNotIn(leased, granted,
                         'port %d, restored by one server for live pid %d, '
                         'leased by its neighbour too\n%s\n%s'
                         % (leased, owner.pid, a.log(), b.log()))

    def test_leases_restored_after_a_clean_stop_keep_their_locks(self):
        self.check_restored_leases_stay_locked(
            '21160-21163', lambda s: self.assertEqual(s.stop(), 0, s.log()))

    def test_leases_restored_after_kill_9_keep_their_locks(self):
        self.check_restored_leases_stay_locked('21164-21167',
                                               lambda s: s.kill())

    def restart_after_a_neighbour_took_the_lease(self, pool, b_owner_pid):
        """Server a leases a port to a live owner and is killed; neighbour b
        leases the whole pool to `b_owner_pid`; a restarts and warns.
        Returns (a, b, the port, a's owner)."""
        scratch = tempfile.mkdtemp(dir=os.environ.get('TEST_TMPDIR'))
        self.addCleanup(shutil.rmtree, scratch)
        flags = ('--portserver_state_file=' + os.path.join(scratch, 'j'),)
        owner = compat_test.spawn_sleeper(self)
        a = self.start_server(pool, extra_args=flags)
        leased = compat_test.ask(a.address, owner.pid, a.pool)
        self.assertIsNotNone(leased, a.log())
        a.kill()
        b = self.start_server(pool, extra_args=('--portserver_state_file=none',))
        taken = [compat_test.ask(b.address, b_owner_pid, b.pool)
                 for _ in b.pool]
        self.assertIn(leased, taken, b.log())
        a = self.start_server(pool, address=a.address, extra_args=flags)
        self.assertTrue(
            log_lines(a, '1 restored or carried lease(s) without their port lock (%d)'
                      % leased), a.log())
        return a, b, leased, owner

    def test_restored_lease_whose_lock_a_neighbour_took_is_reported(self):
        # While a server is down its locks are gone: a neighbour may lease
        # the port. The restarted server keeps the lease and says so.
        a, _, leased, _ = self.restart_after_a_neighbour_took_the_lease(
            '21168-21169', os.getpid())
        # `who` says it too (the log alone did: a new user's trial).
        self.assertIn(b' unlocked=1', who(a, leased), a.log())
        other = compat_test.spawn_sleeper(self)
        self.assertNotEqual(compat_test.ask(a.address, other.pid, a.pool),
                            leased, a.log())

    def test_restored_lease_takes_its_lock_once_the_neighbour_lets_go(self):
        # The neighbour leased the port while this server was down; once its
        # owner ends it lets the lock go, and the restarted server, whose
        # owner still lives, takes it: the neighbour never leases the port
        # again (a new-user trial found it did, to a third process).
        b_owner = compat_test.spawn_sleeper(self)
        a, b, leased, owner = self.restart_after_a_neighbour_took_the_lease(
            '21170-21171', b_owner.pid)
        b_owner.kill()
        b_owner.wait()
        # Until the restarted server holds the lock (a condition, polled).
        deadline = time.monotonic() + 10
        while lock_holder(leased) != a.proc.pid:
            self.assertLess(time.monotonic(), deadline,
                            'the lock of port %d never came back to the '
                            'server of its live owner\n%s\n%s'
                            % (leased, a.log(), b.log()))
            time.sleep(0.01)
        self.assertIsNotNone(a.stderr.wait_for(
            lambda line: 'Every restored lease holds its port lock again'
            in line, timeout=10), a.log())
        self.assertNotIn(b'unlocked', who(a, leased), a.log())
        third = compat_test.spawn_sleeper(self)
        again = [compat_test.ask(b.address, third.pid, b.pool)
                 for _ in b.pool]
        self.assertNotIn(leased, again,
                         'port %d, restored for live pid %d, leased again by '
                         'the neighbour\n%s\n%s'
                         % (leased, owner.pid, a.log(), b.log()))


class ServerInPidNamespaceTest(BindableTestCase):
    """The server in a pid namespace of its own (a container sharing the
    host's network) cannot see a caller outside it: the kernel reports the
    caller's pid as 0, and the pid it names means nothing here. Such a
    request is denied, never leased to whichever process of the server's
    namespace has that number."""

    def test_caller_outside_the_servers_pid_namespace_is_denied(self):
        address = compat_test.new_address()
        # The server is pid 1 of its namespace, the sleep pid 2.
        argv = ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child',
                'sh', '-c', 'sleep 1000 & exec "$0" "$@"',
                compat_test.PORTSERVER_BIN, '--portserver_address=' + address,
                '--portserver_static_pool=21200-21203',
                '--portserver_state_file=none']
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

        def stop():
            proc.kill()
            proc.wait()
        self.addCleanup(stop)
        stderr = compat_test.LineCollector(proc.stderr)
        serving = stderr.wait_for(lambda line: 'Serving on ' + address in line,
                                  timeout=compat_test.STARTUP_TIMEOUT)
        if serving is None and proc.poll() is not None and not any(
                'Serving' in line for line in stderr.lines):
            self.skipTest('cannot start a server in a pid namespace here: %s'
                          % stderr.text())
        self.assertIsNotNone(serving, stderr.text())
        for pid in (2, os.getpid()):
            got = compat_test.ask(address, pid)
            self.assertIsNone(got, 'a caller outside the server\'s pid '
                              'namespace naming pid %d got port %r\n%s'
                              % (pid, got, stderr.text()))
        found = stderr.wait_for(
            lambda line: "outside the server's pid namespace" in line,
            timeout=10)
        self.assertIsNotNone(found, 'the denial is not explained\n%s'
                             % stderr.text())


# The lock names as the README documents them (LinuxPortLockProbe::LockName):
# the port in decimal, then two characters of this alphabet.
SPREAD = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'


def lock_name(port):
    return 'portserver-port-lock-%d-%s%s' % (port, SPREAD[port % 62],
                                             SPREAD[port // 62 % 62])


def lock_is_held(port):
    """True if some process has bound @<lock_name(port)>."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind('\0' + lock_name(port))
        return False
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise
        return True
    finally:
        s.close()


def lock_holder(port):
    """The pid of the process that holds the lock of `port`, or None."""
    inode = None
    with open('/proc/net/unix') as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == '@' + lock_name(port):
                inode = fields[6]
    if inode is None:
        return None
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir('/proc/%s/fd' % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink('/proc/%s/fd/%s' % (pid, fd)) == \
                        'socket:[%s]' % inode:
                    return int(pid)
            except OSError:
                continue
    return None


class LockNameTest(BindableTestCase):
    """Other tools keep off leased ports by the documented lock names, and a
    server older than 0.3.0 (which named its locks without the two
    characters) is warned about."""

    def test_a_port_whose_documented_lock_is_held_is_not_leased(self):
        pool = '21180-21183'
        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(held.close)
        held.bind('\0' + lock_name(21181))
        server = self.start_server(pool)
        granted = [compat_test.ask(server.address, os.getpid(), server.pool)
                   for _ in range(4)]
        self.assertNotIn(21181, granted, server.log())
        self.assertEqual(sorted(p for p in granted if p is not None),
                         [21180, 21182, 21183], server.log())
        for port in (21180, 21182, 21183):
            self.assertTrue(lock_is_held(port), server.log())

    def test_several_ports_in_one_request_take_their_locks(self):
        pool = '21184-21195'
        held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(held.close)
        held.bind('\0' + lock_name(21186))
        server = self.start_server(pool)
        reply = compat_test.raw_exchange(
            server.address,
            b'portserver/1 allocate pid=%d count=8\n' % os.getpid())
        self.assertTrue(reply.startswith(b'portserver/1 ok '), reply)
        ports = [int(p) for p in
                 reply.split(b'ports=')[1].split()[0].split(b',')]
        self.assertEqual(len(ports), 8, reply)
        self.assertNotIn(21186, ports, reply)
        for port in ports:
            self.assertTrue(lock_is_held(port), (port, server.log()))
        # The ports left over (the pool has 12, one locked by us) are not.
        for port in set(server.pool) - set(ports) - {21186}:
            self.assertFalse(lock_is_held(port), (port, server.log()))

    def test_locks_of_an_older_server_are_warned_about(self):
        old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(old.close)
        old.bind('\0portserver-port-lock-21197')
        server = self.start_server('21196-21199')
        self.assertTrue(
            log_lines(server, 'A portserver older than 0.3.0 runs in this '
                      'network namespace: it holds 1 port lock(s) under the '
                      'old names (@portserver-port-lock-<port>; ports 21197)'),
            server.log())

    def test_no_warning_without_an_older_server(self):
        server = self.start_server('21196-21199')
        self.assertFalse(log_lines(server, 'older than 0.3.0'), server.log())


class DescriptorLimitTest(BindableTestCase):
    """A lock takes a descriptor: at the limit, requests are denied, never
    served without the lock, and served again once ports come back."""
    LIMIT = 64

    def test_at_the_descriptor_limit_requests_are_denied_not_unlocked(self):
        pool = '21700-21799'
        server = compat_test.Server(pool)
        # prlimit sets the limit, then execs the server (same pid).
        server.argv = (['prlimit', '--nofile=%d:%d' % (self.LIMIT, self.LIMIT)]
                       + server.argv + ['--portserver_state_file=none'])
        self.servers.append(server)
        server.start()
        self.assertEqual(len(log_lines(server, 'Descriptor limit')), 1,
                         server.log())
        owner = subprocess.Popen(['sleep', '600'])
        self.addCleanup(lambda: (owner.kill(), owner.wait()))
        leased = []
        while True:
            port = compat_test.ask(server.address, owner.pid, server.pool)
            if port is None:
                break
            leased.append(port)
            self.assertLess(len(leased), len(server.pool),
                            'the whole pool leased with %d descriptors'
                            % self.LIMIT)
        self.assertGreater(len(leased), 0, server.log())
        unlocked = [p for p in leased if not lock_is_held(p)]
        self.assertEqual(unlocked, [], 'ports leased without their lock')
        self.assertGreaterEqual(dumped_stat(server, 'port-probe-failures'), 1)
        # Denials are cheap and stable: the same again.
        self.assertIsNone(compat_test.ask(server.address, owner.pid))
        # The owner goes: its ports and their locks come back, and a new
        # owner is served again.
        owner.kill()
        owner.wait()
        other = subprocess.Popen(['sleep', '600'])
        self.addCleanup(lambda: (other.kill(), other.wait()))
        deadline = time.monotonic() + 10
        port = None
        while port is None and time.monotonic() < deadline:
            port = compat_test.ask(server.address, other.pid, server.pool)
            if port is None:
                time.sleep(0.05)  # retry pacing until the exit is noticed
        self.assertIsNotNone(port, server.log())
        self.assertTrue(lock_is_held(port))


# --------------------------------------------------------------------------
# The ephemeral range: warned about, or reserved in the kernel on request.

class EphemeralRangeTest(BindableTestCase):
    def test_overlap_is_named_at_startup(self):
        write_sysctl(RANGE_PATH, '21200 21299')
        write_sysctl(RESERVED_PATH, '21260')
        server = self.start_server('21250-21349')
        warnings = log_lines(server, 'overlaps the ephemeral port range')
        self.assertEqual(len(warnings), 1, server.log())
        self.assertIn('21200-21299', warnings[0])
        self.assertIn('in 49 port(s)', warnings[0])
        self.assertIn('21250-21259,21261-21299', warnings[0])
        self.assertIn('--portserver_reserve_pool_in_kernel', warnings[0])

    def test_pool_outside_the_range_is_not_warned_about(self):
        write_sysctl(RANGE_PATH, '21200 21299')
        write_sysctl(RESERVED_PATH, '')
        server = self.start_server('21300-21349')
        self.assertEqual(log_lines(server, 'ephemeral'), [], server.log())

    def test_reserved_pool_is_never_picked_by_the_kernel_and_restored(self):
        # The ephemeral range is the pool plus three ports; two other ports
        # were reserved by someone else before.
        write_sysctl(RANGE_PATH, '21400 21412')
        write_sysctl(RESERVED_PATH, '21405,21500')
        server = self.start_server(
            '21400-21409', extra_args=('--portserver_reserve_pool_in_kernel',))
        self.assertEqual(read_sysctl(RESERVED_PATH), '21400-21409,21500')
        # bind(0) gets only ports outside the pool, then nothing.
        held, picked = [], []
        try:
            while True:
                s = socket.socket()
                held.append(s)
                try:
                    s.bind(('127.0.0.1', 0))
                except OSError as e:
                    self.assertEqual(e.errno, errno.EADDRINUSE)
                    break
                picked.append(s.getsockname()[1])
        finally:
            for s in held:
                s.close()
        # (The kernel's search may skip a free port of an odd-sized range,
        # so not all three need come out; none of the pool may.)
        self.assertTrue(picked, 'bind(0) found no port at all')
        self.assertLessEqual(set(picked), {21410, 21411, 21412},
                             'bind(0) picked pool ports: %r' % picked)
        self.assertEqual(server.stop(), 0, server.log())
        # What was there before, exactly: 21405 was not ours to remove.
        self.assertEqual(read_sysctl(RESERVED_PATH), '21405,21500')

    def check_refused(self, wrapper, binary, expected_cause):
        """Runs the server with the flag under `wrapper`: it must exit 2,
        name the file, the flag and `expected_cause`, and change nothing."""
        write_sysctl(RESERVED_PATH, '21600')
        status, _, err = compat_test.run_to_completion(
            list(wrapper) +
            [binary, '--portserver_static_pool=21600-21609',
             '--portserver_address=' + compat_test.new_address(),
             '--portserver_state_file=none',
             '--portserver_reserve_pool_in_kernel'], timeout=10)
        self.assertEqual(status, 2, err)
        self.assertIn('portserver: error: --portserver_reserve_pool_in_kernel',
                      err)
        self.assertIn(RESERVED_PATH, err)
        self.assertIn(expected_cause, err)
        self.assertIn('CAP_NET_ADMIN', err)
        self.assertNotIn('Serving on', err)
        self.assertEqual(read_sysctl(RESERVED_PATH), '21600')

    def test_reserve_with_read_only_proc_sys_exits_2(self):
        # A container's usual /proc/sys (Docker mounts it read-only).
        self.check_refused(
            ['unshare', '-m', 'sh', '-c',
             'mount --bind /proc/sys /proc/sys && '
             'mount -o remount,bind,ro /proc/sys && exec "$0" "$@"'],
            compat_test.PORTSERVER_BIN, 'Read-only file system')


class ReservePermissionTest(BindableTestCase):
    """Run alone, unsandboxed (//tests:bindable_permission_test): a sandbox
    maps no uid but root."""
    NOBODY = 65534

    def test_reserve_as_another_user_exits_2(self):
        with open('/proc/self/uid_map') as f:
            mapped = any(int(first) <= self.NOBODY < int(first) + int(count)
                         for first, _, count in
                         (line.split() for line in f))
        if os.geteuid() != 0 or not mapped:
            self.skipTest('cannot switch to uid %d here' % self.NOBODY)
        # A copy that user nobody can run (the runfiles may sit under /root).
        scratch = tempfile.mkdtemp(prefix='portserver-bindable-', dir='/tmp')
        self.addCleanup(shutil.rmtree, scratch)
        os.chmod(scratch, 0o755)
        binary = os.path.join(scratch, 'portserver')
        shutil.copy(compat_test.PORTSERVER_BIN, binary)
        os.chmod(binary, 0o755)
        EphemeralRangeTest.check_refused(
            self, ['setpriv', '--reuid=%d' % self.NOBODY,
                   '--regid=%d' % self.NOBODY, '--clear-groups'],
            binary, 'Permission denied')


if __name__ == '__main__':
    junit_runner.main('bindable_test', compat_test._argv)
