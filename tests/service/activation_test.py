"""Black-box tests of //app:portserver as a service: socket activation
through Debian's systemd-socket-activate (sd_listen_fds(3) semantics), and
one server on several addresses, with the real python portpicker client.

Run by run_test.sh with /usr/bin/python3:
  activation_test.py --portserver_bin=PATH [unittest args]
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import junit_runner  # noqa: E402
import testlib  # noqa: E402
from testlib import LineCollector  # noqa: E402

import portpicker  # noqa: E402  (Debian's python3-portpicker)

# A server that never answers fails a test instead of hanging it.
socket.setdefaulttimeout(20)

ARGV = [sys.argv[0]]
PORTSERVER = None
for _arg in sys.argv[1:]:
    if _arg.startswith('--portserver_bin='):
        PORTSERVER = os.path.abspath(_arg.split('=', 1)[1])
    else:
        ARGV.append(_arg)
ACTIVATE = shutil.which('systemd-socket-activate') or \
    '/usr/bin/systemd-socket-activate'

STARTUP_TIMEOUT = 20.0
EXIT_TIMEOUT = 20.0
POOL = '31000-31002'
POOL_PORTS = testlib.pool_ports(POOL)


def short_tmpdir():
    """A fresh directory short enough for sun_path (TEST_TMPDIR is not)."""
    return tempfile.mkdtemp(prefix='ps-svc-', dir='/tmp')


def listening_unix_inodes(pid):
    """{inode: name} of the listening AF_UNIX sockets process `pid` holds,
    from /proc/<pid>/fd and /proc/net/unix (name '@x' for abstract)."""
    held = {}
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        m = re.match(r'socket:\[(\d+)\]$', target)
        if m:
            held[int(m.group(1))] = int(fd)
    listening = {}
    with open('/proc/net/unix') as f:
        next(f)
        for line in f:
            fields = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            flags, sock_type, inode = int(fields[3], 16), fields[4], int(fields[6])
            path = fields[7] if len(fields) > 7 else ''
            if inode in held and flags & 0x10000 and sock_type == '0001':
                listening[inode] = '@' + path[1:] if path.startswith('@') else path
    return listening


def fd_inode(pid, fd):
    target = os.readlink('/proc/%d/fd/%d' % (pid, fd))
    return int(re.match(r'socket:\[(\d+)\]$', target).group(1))


def ask(address, pid):
    """Raw request on behalf of `pid`: the port, or None on a denial."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    try:
        s.connect(testlib.sockaddr(address))
        s.sendall(b'%d\n' % pid)
        reply = b''
        while True:
            chunk = s.recv(64)
            if not chunk:
                break
            reply += chunk
    finally:
        s.close()
    return int(reply) if reply else None


def connectable(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(testlib.sockaddr(address))
        return True
    except OSError:
        return False
    finally:
        s.close()


def run_with(argv, env, preexec_fn):
    """Runs argv to its end with `env`, calling preexec_fn in the child:
    (status, stdout, stderr)."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, preexec_fn=preexec_fn, close_fds=False,
                              timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError('%r did not exit: %r' % (argv, e.stderr))
    return (done.returncode, done.stdout.decode('utf-8', 'replace'),
            done.stderr.decode('utf-8', 'replace'))


class Process(object):
    """A child whose stderr is collected; stopped with SIGTERM at the end."""

    def __init__(self, argv, **kwargs):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, **kwargs)
        self.err = LineCollector(self.proc.stderr)

    def wait_line(self, pattern, timeout=STARTUP_TIMEOUT):
        i = self.err.wait_for(lambda l: re.search(pattern, l) is not None,
                              timeout=timeout)
        if i is None:
            raise AssertionError('no line matching %r from %r; stderr:\n%s'
                                 % (pattern, self.argv, self.err.text(tail=40)))
        return self.err.lines[i]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.err.join()
        return code

    def exit_code(self, timeout=EXIT_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        finally:
            self.err.join()


class SocketActivationTest(unittest.TestCase):
    """systemd-socket-activate binds, then execs the server on the first
    connection (same pid), passing the socket as descriptor 3."""

    def setUp(self):
        self.dir = short_tmpdir()
        self.addCleanup(shutil.rmtree, self.dir, True)
        # The server's own address flag: must stay unbound under activation.
        self.flag_address = testlib.new_address('svc-flag')

    def activate(self, listen_args, extra=()):
        p = Process([ACTIVATE] + listen_args + [
            PORTSERVER, '--portserver_static_pool=' + POOL,
            '--portserver_state_file=none', '--verbose',
            '--portserver_address=' + self.flag_address] + list(extra))
        self.addCleanup(p.stop)
        return p

    def check_served_through_given_socket(self, address, listen_args):
        p = self.activate(listen_args)
        p.wait_line(r'Listening on .* as 3\.')
        pid = p.proc.pid
        given = fd_inode(pid, 3)  # Bound by systemd-socket-activate.
        # The python client's first connection starts the server.
        port = portpicker.get_port_from_port_server(address, pid=os.getpid())
        self.assertIn(port, POOL_PORTS, p.err.text(tail=40))
        p.wait_line(r'Serving on ' + re.escape(address) +
                    r' \(passed as descriptor 3\)')
        # Same process (exec), same socket: the only listening socket the
        # server holds is the inode it was given, at descriptor 3.
        self.assertEqual(listening_unix_inodes(pid), {given: address})
        self.assertEqual(fd_inode(pid, 3), given)
        self.assertFalse(connectable(self.flag_address),
                         'the server bound --portserver_address too')
        second = portpicker.get_port_from_port_server(address,
                                                      pid=os.getpid())
        self.assertIn(second, POOL_PORTS)
        self.assertNotEqual(second, port)
        self.assertEqual(p.stop(), 0, p.err.text(tail=40))
        return p

    def test_abstract_address(self):
        address = testlib.new_address('svc-abstract')
        self.check_served_through_given_socket(address, ['-l', address])

    def test_path_address(self):
        path = os.path.join(self.dir, 'portserver.sock')
        p = self.activate(['-l', path])
        p.wait_line(r'Listening on .* as 3\.')
        before = os.lstat(path)
        pid = p.proc.pid
        given = fd_inode(pid, 3)
        port = portpicker.get_port_from_port_server(path, pid=os.getpid())
        self.assertIn(port, POOL_PORTS, p.err.text(tail=40))
        p.wait_line(r'Serving on ' + re.escape(path) +
                    r' \(passed as descriptor 3\)')
        self.assertEqual(listening_unix_inodes(pid), {given: path})
        after = os.lstat(path)
        # Not unlinked and re-bound, not chmod-ed: systemd's socket file.
        self.assertEqual((after.st_ino, after.st_mode),
                         (before.st_ino, before.st_mode))
        self.assertFalse(connectable(self.flag_address))
        self.assertEqual(p.stop(), 0, p.err.text(tail=40))
        # The service manager owns the file: the server leaves it.
        self.assertTrue(os.path.exists(path))

    def test_names_and_several_passed_sockets(self):
        abstract = testlib.new_address('svc-two')
        path = os.path.join(self.dir, 'two.sock')
        p = self.activate(['-l', abstract, '-l', path,
                           '--fdname=abstract:path'])
        p.wait_line(r'Listening on .* as 4\.')
        pid = p.proc.pid
        first = portpicker.get_port_from_port_server(path, pid=os.getpid())
        line = p.wait_line(r'Serving on ')
        self.assertIn('%s (passed as descriptor 3, "abstract")' % abstract,
                      line)
        self.assertIn('%s (passed as descriptor 4, "path")' % path, line)
        self.assertEqual(set(listening_unix_inodes(pid).values()),
                         {abstract, path})
        second = portpicker.get_port_from_port_server(abstract,
                                                      pid=os.getpid())
        self.assertIn(first, POOL_PORTS)
        self.assertIn(second, POOL_PORTS)
        self.assertNotEqual(first, second)

    def test_datagram_socket_is_refused_with_exit_2(self):
        address = testlib.new_address('svc-dgram')
        p = self.activate(['--datagram', '-l', address])
        p.wait_line(r'Listening on .* as 3\.')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b'1\n', testlib.sockaddr(address))  # Starts the server.
        s.close()
        self.assertEqual(p.exit_code(), 2, p.err.text(tail=40))
        errors = [l for l in p.err.lines if l.startswith('portserver: error:')]
        self.assertEqual(len(errors), 1, p.err.text(tail=40))
        self.assertIn('descriptor 3', errors[0])
        self.assertIn('AF_UNIX SOCK_DGRAM', errors[0])
        self.assertNotIn('Serving on', p.err.text())


class PassedByHandTest(unittest.TestCase):
    """LISTEN_* set by a shell that then execs the server (same pid), for
    kinds of socket systemd-socket-activate cannot make."""

    def run_with_fd3(self, sock, env_extra=None, fds='1'):
        env = dict(os.environ)
        env.update(env_extra or {})
        script = 'LISTEN_PID=$$ LISTEN_FDS=%s exec "$@"' % fds
        argv = ['/bin/sh', '-c', script, 'sh', PORTSERVER,
                '--portserver_state_file=none',
                '--portserver_static_pool=' + POOL,
                '--portserver_address=' + testlib.new_address('svc-hand')]
        def preexec():
            if sock is None:  # Nothing at descriptor 3, whatever we inherited.
                try:
                    os.close(3)
                except OSError:
                    pass
                return
            if sock.fileno() == 3:  # dup2 onto itself keeps close-on-exec.
                os.set_inheritable(3, True)
            else:
                os.dup2(sock.fileno(), 3)
        return run_with(argv, env, preexec)

    def assert_refused(self, result, *needles):
        code, out, err = result
        self.assertEqual(code, 2, err)
        lines = [l for l in err.splitlines() if l.startswith('portserver: error:')]
        self.assertEqual(len(lines), 1, err)
        for needle in needles:
            self.assertIn(needle, lines[0])
        self.assertNotIn('Serving on', err)

    def test_stream_socket_that_does_not_listen(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(testlib.sockaddr(testlib.new_address('svc-nolisten')))
        self.addCleanup(s.close)
        self.assert_refused(self.run_with_fd3(s), 'descriptor 3',
                            'not listening')

    def test_tcp_socket(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(('127.0.0.1', 0))
        s.listen(4)
        self.addCleanup(s.close)
        result = self.run_with_fd3(s)
        self.assert_refused(result, 'descriptor 3', 'AF_INET SOCK_STREAM')
        # Said once, plainly (a new user saw "passed socket (not an AF_UNIX
        # socket) (passed as descriptor 3) (descriptor 3) is ..."), and not
        # after a line saying it serves the passed socket.
        err = result[2]
        self.assertIn('portserver: error: the socket passed as descriptor 3 '
                      'is AF_INET SOCK_STREAM; want a listening AF_UNIX', err)
        self.assertEqual(err.count('descriptor 3'), 1, err)
        self.assertNotIn('Socket activation: serving', err)

    def test_descriptor_not_open(self):
        self.assert_refused(self.run_with_fd3(None), 'descriptor 3',
                            'not open')

    def test_bad_listen_fds(self):
        self.assert_refused(self.run_with_fd3(None, fds='x'), 'LISTEN_FDS')


class SeveralAddressesTest(unittest.TestCase):
    """One server, an abstract name and a path: one pool, one ledger."""

    def test_one_pool_and_one_ledger_on_every_address(self):
        d = short_tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        abstract = testlib.new_address('svc-multi')
        path = os.path.join(d, 'portserver.sock')
        other = testlib.new_address('svc-multi-b')
        journal = os.path.join(d, 'leases.journal')
        p = Process([PORTSERVER, '--portserver_static_pool=31000-31001',
                     '--portserver_address=' + abstract,
                     '--portserver_extra_addresses=%s,%s' % (path, other),
                     '--portserver_state_file=' + journal])
        self.addCleanup(p.stop)
        line = p.wait_line(r'Serving on ')
        self.assertIn('Serving on %s, %s, %s (' % (abstract, path, other), line)
        me = os.getpid()
        # Two ports in the pool, leased to this live process through two
        # addresses: the third address finds the pool empty.
        first = ask(abstract, me)
        second = ask(path, me)
        self.assertEqual({first, second}, {31000, 31001}, p.err.text(tail=20))
        self.assertIsNone(ask(other, me), 'a second pool behind another address')
        # The python client through the path, as a container would.
        self.assertIsNone(portpicker.get_port_from_port_server(path))
        self.assertEqual(p.stop(), 0, p.err.text(tail=20))
        self.assertFalse(os.path.exists(path))
        # One journal holds both leases.
        with open(journal) as f:
            text = f.read()
        for port in (first, second):
            self.assertRegex(text, r'\b%d\b' % port)

    def test_path_reaches_the_server_from_another_network_namespace(self):
        if shutil.which('unshare') is None:
            self.skipTest('no unshare')
        d = short_tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        abstract = testlib.new_address('svc-netns')
        path = os.path.join(d, 'portserver.sock')
        p = Process([PORTSERVER, '--portserver_static_pool=' + POOL,
                     '--portserver_address=' + abstract,
                     '--portserver_extra_addresses=' + path,
                     '--portserver_state_file=none'])
        self.addCleanup(p.stop)
        p.wait_line(r'Serving on ')
        client = ('import portpicker, sys\n'
                  'print(portpicker.get_port_from_port_server(sys.argv[1],'
                  ' pid=int(sys.argv[2])))\n')
        results = {}
        for address in (abstract, path):
            code, out, err = testlib.run_to_completion(
                ['unshare', '--net', '/usr/bin/python3', '-c', client,
                 address, str(os.getpid())], 30)
            if code != 0 and 'unshare' in err:
                self.skipTest('cannot make a network namespace here: ' + err)
            self.assertEqual(code, 0, err)
            results[address] = out.strip()
        # The abstract name belongs to the server's network namespace only.
        self.assertEqual(results[abstract], 'None')
        self.assertIn(int(results[path]), POOL_PORTS)


if __name__ == '__main__':
    if not PORTSERVER:
        sys.exit('usage: activation_test.py --portserver_bin=PATH')
    junit_runner.main('activation_test', ARGV)
