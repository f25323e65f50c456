#!/usr/bin/python3
"""Crash: leases survive kill -9 of the server through its state file.

Ports leased to owners that are still alive must never go to another owner
after a restart on the same state file; ports of owners that died (before
the crash, or while the server was down) must come back. A damaged journal
must not stop the server: the damaged lines are named in warnings and every
intact lease still counts. Two servers must not share one state file.
"""

import os
import re
import signal

import harness

RESTORED_RE = re.compile(r'restored (\d+) of (\d+)')
WARN_LINE_RE = re.compile(r'\bline (\d+)\b')


class Owners(object):
    """Live owners and the ports each holds, as the test knows them."""

    def __init__(self, test):
        self.test = test
        self.live = {}   # Popen -> set of ports

    def spawn(self):
        proc = self.test.owner()
        self.live[proc] = set()
        return proc

    def ports(self):
        return set().union(*self.live.values()) if self.live else set()

    def kill(self, proc):
        ports = self.live.pop(proc)
        harness.kill_owner(proc)
        return ports


class CrashTestBase(harness.ServerTestCase):
    POOL = None

    def setUp(self):
        super().setUp()
        self.address = harness.new_address()
        self.state_file = os.path.join(harness.tmpdir(),
                                       '%s.journal' % self.id().split('.')[-1])
        if os.path.exists(self.state_file):
            os.unlink(self.state_file)
        self.pool = harness.pool_ports(self.POOL)
        self.held = Owners(self)
        self.server = None
        self.restarts = 0

    def start(self):
        self.server = self.start_server(
            self.POOL, address=self.address,
            args=['--portserver_state_file=' + self.state_file])
        return self.server

    def crash(self):
        status = self.server.kill()
        self.assertEqual(status, -signal.SIGKILL, self.server.log())

    def restart(self):
        """Crash (kill -9) and start again on the same address and file."""
        self.crash()
        self.restarts += 1
        first = self.server
        self.start()
        self.assertNotEqual(first.pid, self.server.pid)

    def lease(self, proc, n):
        """n ports for a live owner; none may be held by another one."""
        got = []
        for _ in range(n):
            held = self.held.ports()
            port = harness.ask(self.address, proc.pid)
            self.assertIsNotNone(port, 'request for live pid %d denied\n%s'
                                 % (proc.pid, self.server.log()))
            self.assertIn(port, self.pool)
            self.assertNotIn(port, held, 'port %d granted to pid %d while '
                             'another live owner holds it\n%s' %
                             (port, proc.pid, self.server.log()))
            self.held.live[proc].add(port)
            got.append(port)
        return got

    def restored_count(self):
        lines = [l for l in self.server.stderr.lines
                 if 'restored' in l or 'no leases to restore' in l]
        self.assertTrue(lines, 'the log does not mention restored leases\n%s'
                        % self.server.log())
        if 'no leases to restore' in lines[-1]:
            return 0
        return int(RESTORED_RE.search(lines[-1]).group(1))

    def assert_restored(self, expected_ports):
        """The log and the stats count exactly the live owners' ports."""
        self.assertEqual(self.restored_count(), len(expected_ports),
                         'restored count after restart %d; live ports %s\n%s'
                         % (self.restarts, sorted(expected_ports),
                            self.server.log()))
        self.assert_stats(self.server, {'leased-ports': len(expected_ports)})

    def fill(self, protected):
        """A new owner takes ports until denied; it must get exactly the pool
        minus the `protected` ports (those of live owners). Returns them."""
        proc = harness.spawn_owner()
        got = []
        try:
            for _ in range(len(self.pool) + 1):
                port = harness.ask(self.address, proc.pid)
                if port is None:
                    break
                got.append(port)
        finally:
            harness.kill_owner(proc)
        stolen = sorted(set(got) & protected)
        self.assertFalse(stolen, 'after restart %d, ports of live owners '
                         'were handed to a new owner: %s (live ports %s)\n%s'
                         % (self.restarts, stolen, sorted(protected),
                            self.server.log()))
        self.assertEqual(len(got), len(set(got)), 'a port granted twice to '
                         'one owner: %s' % sorted(got))
        missing = sorted(self.pool - protected - set(got))
        self.assertFalse(missing, 'after restart %d, free ports never came '
                         'back: %s\n%s' % (self.restarts, missing,
                                           self.server.log()))
        return set(got)


class KillNineRestartTest(CrashTestBase):
    POOL = '32000-32039'
    ROUNDS = 4

    def test_kill9_restart_keeps_live_leases(self):
        self.start()
        gone_total = 0
        for round_ in range(self.ROUNDS):
            # Leases that must survive: two new live owners, 3 ports each.
            for _ in range(2):
                self.lease(self.held.spawn(), 3)
            # Leases of owners killed before the crash.
            dead_ports = set()
            for _ in range(2):
                proc = self.held.spawn()
                self.lease(proc, 2)
                dead_ports |= self.held.kill(proc)
            # An owner alive at the crash that dies while the server is down.
            doomed = self.held.spawn()
            self.lease(doomed, 2)
            # The last grant before the crash goes to a surviving owner.
            survivor = next(iter(self.held.live))
            self.lease(survivor, 1)

            self.crash()
            dead_ports |= self.held.kill(doomed)
            gone_total += len(dead_ports)
            self.restarts += 1
            self.start()

            live_ports = self.held.ports()
            self.assert_restored(live_ports)
            got = self.fill(live_ports)
            self.assertTrue(dead_ports <= got, 'ports of dead owners did not '
                            'come back after restart %d: %s\n%s' %
                            (self.restarts, sorted(dead_ports - got),
                             self.server.log()))
            # The fill owner is dead now: its ports come back in the next
            # round, from the same server, before the next crash.
        print('\ncrash figures: %d kill -9 restarts; %d live owners holding '
              '%d ports survived every restart; %d ports of dead owners came '
              'back' % (self.restarts, len(self.held.live),
                        len(self.held.ports()), gone_total))
        self.assertGreaterEqual(self.restarts, 3)


class CorruptJournalTest(CrashTestBase):
    POOL = '32100-32159'

    def read_lines(self):
        self.assertTrue(os.path.exists(self.state_file),
                        'no state file at %s' % self.state_file)
        with open(self.state_file, 'rb') as f:
            return f.read().split(b'\n')

    def line_port(self, line):
        m = re.match(rb'^L (\d+) ', line)
        return int(m.group(1)) if m else None

    def restart_damaged(self, damage, label):
        """Crash, damage the file with `damage(lines)` -> (bytes, numbers
        of the damaged lines, ports of the damaged lease lines), restart;
        checks the warnings and that every intact lease still counts."""
        self.crash()
        text, damaged, lost = damage(self.read_lines())
        with open(self.state_file, 'wb') as f:
            f.write(text)
        # The server cannot know the leases of damaged lines any more.
        for ports in self.held.live.values():
            ports -= lost
        self.restarts += 1
        self.start()   # Fails with the exit status and log if it does not.
        named = set()
        for line in self.server.stderr.lines:
            if line.startswith('W'):
                named |= {int(n) for n in WARN_LINE_RE.findall(line)}
        self.assertEqual(named, set(damaged), '%s: the warnings should name '
                         'exactly the damaged lines %s\n%s' %
                         (label, sorted(damaged), self.server.log()))
        live_ports = self.held.ports()
        self.assert_restored(live_ports)
        self.fill(live_ports)
        return len(damaged)

    def new_leases(self):
        for _ in range(3):
            self.lease(self.held.spawn(), 2)
        dead = self.held.spawn()
        self.lease(dead, 1)
        self.held.kill(dead)
        # The last lease line of the file is a live owner's (its note may
        # follow it).
        self.lease(self.held.spawn(), 1)

    def last_lease_line(self, lines):
        """1-based number of the last lease (L) line: the last append, which
        only the lease's note (N line: its label and time) may follow."""
        n = max(i + 1 for i, l in enumerate(lines)
                if self.line_port(l) is not None)
        self.assertTrue(all(l.startswith(b'N ') for l in lines[n:-1]),
                        lines[n:])
        return n

    def lease_lines(self, lines):
        """1-based numbers of the lines that lease a port to a live owner."""
        live = self.held.ports()
        return [i + 1 for i, l in enumerate(lines)
                if self.line_port(l) in live]

    def test_damaged_journal_is_survived(self):
        self.start()
        self.new_leases()

        def flip_middle(lines):
            candidates = self.lease_lines(lines)[:-1]
            n = candidates[len(candidates) // 2]
            port = self.line_port(lines[n - 1])
            line = bytearray(lines[n - 1])
            for i in (len(line) // 2, len(line) // 2 + 2):
                line[i] ^= 0x20     # never turns a byte into '\n'
            lines = list(lines)
            lines[n - 1] = bytes(line)
            return b'\n'.join(lines), [n], {port}

        def truncate_last(lines):
            # A torn last write (a lease line, then its note): the note is
            # gone, the lease line lacks its newline and checksum tail.
            self.assertEqual(lines[-1], b'')
            n = self.last_lease_line(lines)
            self.assertIn(n, self.lease_lines(lines))
            text = b'\n'.join(lines[:n])[:-3]
            return text, [n], {self.line_port(lines[n - 1])}

        def append_garbage(lines):
            self.assertEqual(lines[-1], b'')
            n = len(lines)      # the number of the first appended line
            garbage = [b'\x00\xff\xfe garbage \x01\x02',
                       b'L %d 1 2 3' % min(self.pool),
                       b'L 99999 %d 1 00000000' % os.getpid(),
                       os.urandom(300).replace(b'\n', b'.'),
                       b'portserver-journal 1']
            return (b'\n'.join(lines) + b'\n'.join(garbage) + b'\n',
                    list(range(n, n + len(garbage))), set())

        def all_three(lines):
            # Flipped bytes in the middle, garbage appended, and the last
            # lease line moved to the end, torn.
            self.assertEqual(lines[-1], b'')
            n = self.last_lease_line(lines)
            last = lines[n - 1]
            text, flipped, lost = flip_middle(lines[:n - 1] + [b''])
            text, garbage, _ = append_garbage(text.split(b'\n'))
            return (text + last[:-4], flipped + garbage + [garbage[-1] + 1],
                    lost | {self.line_port(last)})

        damaged = 0
        for label, damage in (('flipped bytes', flip_middle),
                              ('truncated last line', truncate_last),
                              ('appended garbage', append_garbage),
                              ('all three', all_three)):
            damaged += self.restart_damaged(damage, label)
            self.new_leases()
        # A last clean restart: everything still honoured.
        self.restarts += 1
        self.crash()
        self.start()
        live_ports = self.held.ports()
        self.assert_restored(live_ports)
        self.fill(live_ports)
        print('\ncorrupt journal figures: %d restarts, %d damaged lines '
              'named, %d live leases honoured at the end'
              % (self.restarts, damaged, len(live_ports)))


class SharedStateFileTest(CrashTestBase):
    POOL = '32200-32209'

    def test_second_server_on_same_state_file_exits_2(self):
        self.start()
        proc = self.held.spawn()
        self.lease(proc, 2)
        status, stdout, stderr = harness.run_binary(
            ['--portserver_static_pool=' + self.POOL,
             '--portserver_address=' + harness.new_address(),
             '--portserver_state_file=' + self.state_file])
        context = 'exit %s\nstdout: %r\nstderr: %r' % (status, stdout, stderr)
        self.assertEqual(status, 2, context)
        self.assertIn('in use', stderr, context)
        self.assertNotIn('Serving on', stderr + stdout, context)
        # The first server and its journal are undisturbed.
        self.lease(proc, 1)
        self.restart()
        self.assert_restored(self.held.ports())
        self.fill(self.held.ports())


if __name__ == '__main__':
    harness.main('crash_test')
