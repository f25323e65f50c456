"""Black-box tests of //app:portserver (issue 9): faults of the host and the
hygiene of its state.

  DiskFullTest        a real full filesystem (a small tmpfs mounted by the
                      test), then space comes back: the journal then holds
                      every live lease, so a kill -9 and restart keep them;
                      the outage is logged once and counted; a clean
                      stop while it lasts says what the journal lacks.
  DeletedJournalTest  the journal and its lock are deleted while the server
                      runs: it writes a fresh journal and re-takes the lock,
                      whether plain or extended requests come next.
  CleanStopTest       a clean stop with no live lease leaves no file; with
                      live leases the journal stays.
  NetnsJournalTest    default servers on one abstract address in two
                      network namespaces keep apart journals; leases
                      outside the pool are carried loudly, with their
                      ports' locks.
  StartupLineTest     the start-up line says what was restored.
  OthersFilesTest     a state file that is not a journal (a typo naming
                      someone else's file, a directory, a FIFO, a device,
                      a symlink), a .lock or .tmp beside it that is not the
                      server's: refused with exit 2, kept as it was; a
                      journal damaged after its header is still restored.
"""

import errno
import os
import shutil
import signal
import subprocess
import tempfile

import harness

TMPFS_SIZE = 256 * 1024


def messages(server, start=0):
    with server.stderr.cond:
        lines = server.stderr.lines[start:]
    return [l for l in lines if harness.LOG_LINE_RE.match(l)]


class FaultTestBase(harness.ServerTestCase):
    POOL = None

    def setUp(self):
        super().setUp()
        self.address = harness.new_address()
        self.workdir = os.path.join(harness.tmpdir(), self.id().split('.')[-1])
        os.makedirs(self.workdir, exist_ok=True)

    def start(self, state_file, **kwargs):
        return self.start_server(
            self.POOL, address=self.address,
            args=['--portserver_state_file=' + state_file], **kwargs)

    def lease(self, server, owner, n):
        got = []
        for _ in range(n):
            port = harness.ask(server.address, owner.pid)
            self.assertIsNotNone(port, server.log())
            got.append(port)
        return got

    def crash_and_restart(self, server, state_file):
        self.assertEqual(server.kill(), -signal.SIGKILL)
        return self.start(state_file)


class DiskFullTest(FaultTestBase):
    POOL = '35000-35999'

    def setUp(self):
        super().setUp()
        self.mount = os.path.join(self.workdir, 'small')
        os.makedirs(self.mount, exist_ok=True)
        done = subprocess.run(
            ['mount', '-t', 'tmpfs', '-o', 'size=%d,mode=0700' % TMPFS_SIZE,
             'tmpfs', self.mount], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.assertEqual(done.returncode, 0, 'cannot mount a small tmpfs (the '
                         'test needs root): %s' % done.stdout)
        self.addCleanup(subprocess.run, ['umount', '-l', self.mount])

    def fill(self):
        """Fills the filesystem to its last byte; returns the filler's path."""
        filler = os.path.join(self.mount, 'filler')
        with open(filler, 'wb', buffering=0) as f:
            for size in (65536, 4096, 512, 64, 1):
                while True:
                    try:
                        f.write(b'\0' * size)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
        return filler

    def test_leases_granted_while_the_disk_was_full_survive_a_crash(self):
        journal = os.path.join(self.mount, 'x.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 2)
        filler = self.fill()
        # Appends go into the journal's last page until it is full: lease
        # until the server says the journal cannot be written (bounded).
        start = server.stderr.count()
        for _ in range(600):
            held += self.lease(server, owner, 1)
            if server.stderr.wait_for(lambda l: 'cannot be written' in l,
                                      start=start, timeout=0) is not None:
                break
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'cannot be written' in l, start=start), server.log())
        held += self.lease(server, owner, 20)  # Not journaled now.
        outage = [l for l in messages(server, start) if 'cannot be written' in l]
        self.assertEqual(len(outage), 1, 'the outage must be logged once, '
                         'not per grant:\n%s' % '\n'.join(outage))
        stats = server.stats()
        self.assertEqual(stats['journal-outages'], 1)
        self.assertGreaterEqual(stats['journal-missed-grants'], 21)

        os.unlink(filler)  # Space comes back.
        start = server.stderr.count()
        self.assertIsNone(harness.ask(server.address,
                                      harness.find_nonexistent_pid()))
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'written again' in l, start=start),
            'no "written again" line once space came back\n%s' % server.log())
        server = self.crash_and_restart(server, journal)
        self.assert_stats(server, {'leased-ports': len(held)})
        # And none of them goes to another process.
        other = self.owner()
        for _ in range(10):
            port = harness.ask(server.address, other.pid)
            self.assertNotIn(port, held, 'port %d of a live owner was handed '
                             'out again after the restart' % port)


    def test_clean_stop_while_the_journal_is_behind_says_what_it_lacks(self):
        journal = os.path.join(self.mount, 'x.journal')
        server = self.start(journal)
        owner = self.owner()
        self.lease(server, owner, 2)
        self.fill()
        start = server.stderr.count()
        for _ in range(600):
            self.lease(server, owner, 1)
            if server.stderr.wait_for(lambda l: 'cannot be written' in l,
                                      start=start, timeout=0) is not None:
                break
        self.lease(server, owner, 3)  # Not journaled: the disk is still full.
        start = server.stderr.count()
        self.assertEqual(server.stop(), 0, server.log())
        kept = [l for l in messages(server, start) if 'State file' in l]
        self.assertTrue(kept, server.log())
        self.assertIn('lacks', kept[-1].split(journal, 1)[-1], 'a clean stop with the journal '
                      'behind must say that it lacks leases, not that it '
                      'keeps them all:\n%s' % server.log())

    def test_clean_stop_after_a_failed_rewrite_alone_lacks_no_grant(self):
        # Only a rewrite failed (here a release's; at start-up, one under a
        # low descriptor limit): no grant is missing from the journal, and
        # the stop said it lacked the grants made while it could not be
        # written, with journal-missed-grants 0 (a new user's trial).
        journal = os.path.join(self.mount, 'x.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 3)
        self.fill()
        reply = harness.raw_exchange(
            server.address, b'portserver/1 release ports=%d\n' % held[0])
        self.assertTrue(reply.startswith(b'portserver/1 ok'), reply)
        self.assertEqual(server.stats()['journal-missed-grants'], 0)
        start = server.stderr.count()
        self.assertEqual(server.stop(), 0, server.log())
        kept = [l for l in messages(server, start) if 'State file' in l]
        self.assertTrue(kept, server.log())
        said = kept[-1].split(journal, 1)[-1]  # Not the path's words.
        self.assertNotIn('lacks', said, server.log())
        self.assertIn('no grant is missing', said, server.log())
        # As said: every grant is there (the released one too).
        server = self.start(journal)
        self.assert_stats(server, {'leased-ports': len(held)})


class DeletedJournalTest(FaultTestBase):
    POOL = '35000-35099'

    def test_deleted_journal_and_lock_are_written_afresh(self):
        journal = os.path.join(self.workdir, 'deleted.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 5)
        os.unlink(journal)          # A /tmp cleaner, an operator.
        os.unlink(journal + '.lock')
        start = server.stderr.count()
        # The next request, whatever it is, notices.
        self.assertIsNone(harness.ask(server.address,
                                      harness.find_nonexistent_pid()))
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'deleted or replaced' in l, start=start), server.log())
        self.assertTrue(os.path.exists(journal))
        self.assertTrue(os.path.exists(journal + '.lock'))
        # The lock keeps a second server off the journal again.
        status, _, err = harness.run_binary(
            ['--portserver_address=' + harness.new_address(),
             '--portserver_static_pool=' + self.POOL,
             '--portserver_state_file=' + journal], timeout=10)
        self.assertEqual(status, 2, err)
        self.assertIn('in use by another port server', err)
        held += self.lease(server, owner, 2)
        server = self.crash_and_restart(server, journal)
        self.assert_stats(server, {'leased-ports': len(held)})


    def test_an_idle_server_writes_a_deleted_journal_afresh(self):
        # Noticed at the next request only, a deletion followed by a crash
        # of a server that got no request in between lost every lease. It
        # is checked between requests too (about every second).
        journal = os.path.join(self.workdir, 'idle.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 3)
        start = server.stderr.count()
        os.unlink(journal)
        os.unlink(journal + '.lock')
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'deleted or replaced' in l, start=start, timeout=10),
            server.log())
        self.assertTrue(os.path.exists(journal + '.lock'))
        server = self.crash_and_restart(server, journal)  # No request.
        self.assert_stats(server, {'leased-ports': len(held)})

    def test_truncated_journal_is_written_afresh(self):
        # `: > journal` while the server runs: the records appended after it
        # made a journal without its header, which a restart refused.
        journal = os.path.join(self.workdir, 'truncated.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 5)
        with open(journal, 'w'):
            pass
        start = server.stderr.count()
        self.assertIsNone(harness.ask(server.address,
                                      harness.find_nonexistent_pid()))
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'or truncated' in l, start=start), server.log())
        with open(journal) as f:
            self.assertTrue(f.readline().startswith('portserver-journal 1'))
        held += self.lease(server, owner, 2)
        server = self.crash_and_restart(server, journal)
        self.assert_stats(server, {'leased-ports': len(held)})

    def test_extended_requests_also_rewrite_it(self):
        # What portpicker -n, PickUnusedPorts and portserverctl send: these
        # once skipped the check, kept appending to the deleted file, and a
        # kill -9 then lost every lease.
        journal = os.path.join(self.workdir, 'extended.journal')
        server = self.start(journal)
        owner = self.owner()

        def allocate(count):
            got = harness.raw_exchange(
                server.address,
                b'portserver/1 allocate pid=%d count=%d\n' % (owner.pid, count))
            self.assertTrue(got.startswith(b'portserver/1 ok'), got)

        allocate(20)
        os.unlink(journal)
        start = server.stderr.count()
        for _ in range(3):
            allocate(2)
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'deleted or replaced' in l, start=start), server.log())
        self.assertTrue(os.path.exists(journal))
        os.unlink(journal)
        start = server.stderr.count()
        got = harness.raw_exchange(server.address, b'portserver/1 status\n')
        self.assertTrue(got.startswith(b'portserver/1 ok'), got)
        self.assertIsNotNone(server.stderr.wait_for(
            lambda l: 'deleted or replaced' in l, start=start), server.log())
        server = self.crash_and_restart(server, journal)
        self.assert_stats(server, {'leased-ports': 26})


def fnv1a_hex(text):
    """The journal's line checksum (domain/lease_journal.cc)."""
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return '%08x' % h


class RebootTest(FaultTestBase):
    POOL = '35300-35349'

    def test_leases_of_an_earlier_boot_are_not_restored(self):
        # Owners are a pid and a start time in clock ticks after boot: after
        # a reboot the same pair may name a new process. A journal kept
        # across one (the packaged service's /var/lib/portserver) names its
        # boot, and one of another boot restores nothing.
        journal = os.path.join(self.workdir, 'boot.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 3)
        server = self.crash_and_restart(server, journal)
        self.assert_stats(server, {'leased-ports': len(held)})
        with open('/proc/sys/kernel/random/boot_id') as f:
            boot = f.read().strip()
        with open(journal) as f:
            lines = f.read().split('\n')
        self.assertEqual(lines[1], 'B %s %s' % (boot, fnv1a_hex('B ' + boot)))
        # As if the host had booted since it was written.
        self.assertEqual(server.kill(), -signal.SIGKILL)
        other = '00000000-0000-4000-8000-000000000000'
        lines[1] = 'B %s %s' % (other, fnv1a_hex('B ' + other))
        with open(journal, 'w') as f:
            f.write('\n'.join(lines))
        server = self.start(journal)
        self.assertIn('written before the host last booted (boot id %s)'
                      % other, server.log())
        self.assert_stats(server, {'leased-ports': 0})


class CleanStopTest(FaultTestBase):
    POOL = '35100-35109'

    def start_default(self, runtime):
        """A server on the default state file, under `runtime`."""
        return self.start_server(
            self.POOL, address=self.address,
            env=dict(os.environ, XDG_RUNTIME_DIR=runtime))

    def test_clean_stop_without_leases_leaves_nothing(self):
        runtime = os.path.join(self.workdir, 'runtime')
        os.makedirs(runtime, exist_ok=True)
        server = self.start_default(runtime)
        # A default journal found empty says where its place comes from: a
        # server started before with another XDG_RUNTIME_DIR journaled
        # elsewhere, and its live owners' ports were leased again (a new
        # user's trial).
        self.assertTrue(any('no leases to restore' in l and
                            'XDG_RUNTIME_DIR' in l and
                            '--portserver_state_file' in l
                            for l in messages(server)), server.log())
        state_dir = os.path.join(runtime, 'portserver')
        self.assertTrue(os.listdir(state_dir), 'no journal while serving')
        owner = self.owner()
        self.lease(server, owner, 2)
        harness.kill_owner(owner)
        self.assert_stats(server, {'leased-ports': 0})
        self.assertEqual(server.stop(), 0)
        self.assertFalse(os.path.exists(state_dir),
                         'left behind: %s' % (os.listdir(state_dir)
                                              if os.path.isdir(state_dir)
                                              else state_dir))

    def test_a_runtime_directory_that_is_gone_falls_back_to_tmp(self):
        # XDG_RUNTIME_DIR kept by a shell after logind removed it (the
        # user's last session ended): the server exited 2 ("cannot create
        # .../portserver"), where an unset one gets /tmp/portserver-<uid>.
        gone = os.path.join(self.workdir, 'run-user-gone')
        server = self.start_default(gone)
        self.assertIn('XDG_RUNTIME_DIR=%s is not a directory' % gone,
                      server.log())
        fallback = '/tmp/portserver-%d' % os.geteuid()
        name = self.address[1:]
        self.assertTrue(any(n.startswith(name) and n.endswith('.journal')
                            for n in os.listdir(fallback)),
                        os.listdir(fallback))
        self.assertFalse(os.path.exists(gone))
        self.assertEqual(server.stop(), 0, server.log())

    def test_restart_with_a_runtime_directory_finds_the_journal_in_tmp(self):
        # Started without XDG_RUNTIME_DIR (cron, a CI step), then again from
        # a login shell that has it: the second server looked only in
        # $XDG_RUNTIME_DIR/portserver, restored nothing and leased a live
        # owner's port to another process (a new user's trial).
        env = dict(os.environ)
        env.pop('XDG_RUNTIME_DIR', None)
        server = self.start_server(self.POOL, address=self.address, env=env)
        owner = self.owner()
        held = self.lease(server, owner, 2)
        self.assertEqual(server.stop(), 0)
        runtime = os.path.join(self.workdir, 'runtime-later')
        os.makedirs(runtime, exist_ok=True)
        server = self.start_default(runtime)
        self.assertIn('found in the other default place', server.log())
        self.assert_stats(server, {'leased-ports': len(held)})
        other = self.owner()
        for port in self.lease(server, other, 8):
            self.assertNotIn(port, held, server.log())
        harness.kill_owner(owner)
        harness.kill_owner(other)
        self.assert_stats(server, {'leased-ports': 0})
        self.assertEqual(server.stop(), 0)

    def test_journal_outlives_its_runtime_directory(self):
        # logind removes $XDG_RUNTIME_DIR at the user's last logout, and
        # the journal in it with it: a running server could not make its
        # directory again, lost every lease it held, and a restart leased
        # live owners' ports again (a new user's trial, rm -rf for logind).
        runtime = os.path.join(self.workdir, 'runtime-gone')
        os.makedirs(runtime, exist_ok=True)
        server = self.start_default(runtime)
        owner = self.owner()
        held = self.lease(server, owner, 2)
        shutil.rmtree(runtime)
        held += self.lease(server, owner, 1)  # Finds it gone, moves.
        # (Waited for: the line is read from the server's stderr by another
        # thread, and the server may have moved it between requests too.)
        moved = 'moved to /tmp/portserver-%d/' % os.geteuid()
        self.assertIsNotNone(server.stderr.wait_for(lambda l: moved in l),
                             server.log())
        self.assertEqual(server.stop(), 0)
        self.assertIn('kept: 3 live lease(s)', server.log())
        os.makedirs(runtime)  # The next login's, empty.
        server = self.start_default(runtime)
        self.assertIn('found in the other default place', server.log())
        self.assert_stats(server, {'leased-ports': len(held)})
        other = self.owner()
        for port in self.lease(server, other, 7):
            self.assertNotIn(port, held, server.log())
        harness.kill_owner(owner)
        harness.kill_owner(other)
        self.assert_stats(server, {'leased-ports': 0})
        self.assertEqual(server.stop(), 0)

    def short_directory(self):
        """A new directory whose path leaves room for a socket's name
        (sun_path is 108 bytes; the test's own directory is longer)."""
        path = tempfile.mkdtemp(prefix='ps-', dir='/tmp')
        self.addCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    def test_path_address_spelled_otherwise_keeps_its_journal(self):
        # A path address's journal was named after the path as spelled:
        # `rel.sock` started in its directory, then restarted as
        # `<dir>//./rel.sock` (a script run from elsewhere), found no
        # journal and leased a live owner's port again (a new user's
        # trial: four spellings of one socket, four journals).
        runtime = os.path.join(self.workdir, 'runtime-spelling')
        os.makedirs(runtime, exist_ok=True)
        sockets = self.short_directory()
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
        server = self.start_server(self.POOL, address='rel.sock', env=env,
                                   cwd=sockets)
        path = os.path.join(sockets, 'rel.sock')
        owner = self.owner()
        held = [harness.ask(path, owner.pid) for _ in range(2)]
        self.assertNotIn(None, held, server.log())
        self.assertEqual(server.stop(), 0)
        server = self.start_server(self.POOL,
                                   address=sockets + '//./rel.sock', env=env)
        self.assert_stats(server, {'leased-ports': len(held)})
        other = self.owner()
        for port in self.lease(server, other, 8):
            self.assertNotIn(port, held, server.log())
        self.assertEqual(len(os.listdir(os.path.join(runtime, 'portserver'))),
                         2, 'one journal and its lock')

    def test_one_relative_path_in_two_directories_is_two_servers(self):
        # `rel.sock` in two directories names two sockets, but both servers
        # took one journal, and the second exited 2 ("in use by another
        # port server").
        runtime = os.path.join(self.workdir, 'runtime-relative')
        os.makedirs(runtime, exist_ok=True)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
        servers = []
        for pool in (self.POOL, '35110-35119'):
            where = self.short_directory()
            server = self.start_server(pool, address='rel.sock', env=env,
                                       cwd=where)
            owner = self.owner()
            port = harness.ask(os.path.join(where, 'rel.sock'), owner.pid)
            self.assertIn(port, server.pool, server.log())
            servers.append(server)
        for server in servers:
            self.assertEqual(server.stop(), 0, server.log())

    def leases_survive_a_look_alike(self, tag, first, second):
        """`first` leases a port to a live owner and stops (its journal
        stays); `second`, with another pool, starts and stops; `first`
        restarts and still has the lease. Returns `second`'s log."""
        runtime = os.path.join(self.workdir, 'runtime-' + tag)
        os.makedirs(runtime, exist_ok=True)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
        server = self.start_server(self.POOL, address=first, env=env)
        owner = self.owner()
        held = self.lease(server, owner, 1)
        self.assertEqual(server.stop(), 0)
        other = self.start_server('35110-35119', address=second, env=env)
        log = other.log()
        self.assertNotIn('dropping', log)
        self.assertEqual(other.stop(), 0)
        server = self.start_server(self.POOL, address=first, env=env)
        self.assert_stats(server, {'leased-ports': len(held)})
        return log

    def test_look_alike_addresses_have_journals_of_their_own(self):
        # "@x:a" and "@x_a" are two servers, but their default journals
        # had one name ("x_a..."): the second took the first's journal and
        # dropped its lease of a live owner as outside its own pool (a
        # Windows trial found it with two non-ASCII pipe names).
        self.leases_survive_a_look_alike(
            'alike', self.address + ':a', self.address + '_a')

    def test_look_alike_leaves_a_stopped_servers_leases_alone(self):
        # The other order (a review): "@x_a" first. The name servers before
        # 0.4.2 gave "@x:a"'s journal is "@x_a"'s journal now, and "@x:a"
        # took it for its old one, dropping the lease as outside its pool.
        log = self.leases_survive_a_look_alike(
            'alike-stopped', self.address + '_c', self.address + ':c')
        self.assertIn('holds leases outside this server\'s pool', log)

    def test_look_alike_of_a_running_server_starts_too(self):
        # The other order (a review): "@x_a" runs, then "@x:a" starts: that
        # journal is in use, so "@x:a" exited 2.
        runtime = os.path.join(self.workdir, 'runtime-alike-running')
        os.makedirs(runtime, exist_ok=True)
        env = dict(os.environ, XDG_RUNTIME_DIR=runtime)
        plain, alike = self.address + '_b', self.address + ':b'
        server = self.start_server(self.POOL, address=plain, env=env)
        owner = self.owner()
        self.lease(server, owner, 1)
        for pool in ('35110-35119', self.POOL):  # Another pool; the same.
            other = self.start_server(pool, address=alike, env=env)
            self.assertEqual(other.stop(), 0, other.log())

    def test_journal_of_an_older_server_is_taken_over(self):
        # Servers before 0.4.2 named the journal of "@x:up" "x_up...": an
        # upgraded server finds it under that name and keeps its leases.
        runtime = os.path.join(self.workdir, 'runtime-upgrade')
        state_dir = os.path.join(runtime, 'portserver')
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        address = self.address + ':up'
        legacy = os.path.join(state_dir, '%s_up.netns-%d.journal' % (
            self.address[1:], os.stat('/proc/self/ns/net').st_ino))
        server = self.start_server(
            self.POOL, address=address,
            args=['--portserver_state_file=' + legacy])
        owner = self.owner()
        held = self.lease(server, owner, 2)
        self.assertEqual(server.stop(), 0)
        server = self.start_server(
            self.POOL, address=address,
            env=dict(os.environ, XDG_RUNTIME_DIR=runtime))
        self.assertIn('has a name servers before 0.4.2 gave it',
                      server.log())
        self.assert_stats(server, {'leased-ports': len(held)})

    def test_clean_stop_with_live_leases_keeps_the_journal(self):
        runtime = os.path.join(self.workdir, 'runtime2')
        os.makedirs(runtime, exist_ok=True)
        server = self.start_default(runtime)
        owner = self.owner()
        held = self.lease(server, owner, 2)
        self.assertEqual(server.stop(), 0)
        state_dir = os.path.join(runtime, 'portserver')
        journals = [n for n in os.listdir(state_dir)
                    if n.endswith('.journal')]
        self.assertEqual(len(journals), 1, os.listdir(state_dir))
        server = self.start_default(runtime)
        self.assert_stats(server, {'leased-ports': len(held)})


    def test_clean_stop_just_after_a_deletion_keeps_the_leases(self):
        # Deleted, then stopped before any request noticed: the stop writes
        # the journal again (it once logged "kept" of a file that was gone).
        journal = os.path.join(self.workdir, 'deleted-at-stop.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 3)
        os.unlink(journal)
        os.unlink(journal + '.lock')
        self.assertEqual(server.stop(), 0)
        self.assertTrue(os.path.exists(journal), server.log())
        server = self.start(journal)
        self.assert_stats(server, {'leased-ports': len(held)})


class OthersRuntimeDirTest(FaultTestBase):
    """Run alone, unsandboxed (host_faults_permission_test): a sandbox maps
    no uid but root."""
    POOL = '37220-37229'

    def test_another_users_runtime_directory_is_not_used(self):
        # su without -, sudo -E: root's server with a user's XDG_RUNTIME_DIR
        # made a root-owned portserver/ there, and the user's own server
        # then refused to start ("must be owned by uid ...").
        with open('/proc/self/uid_map') as f:
            mapped = any(int(first) <= 65534 < int(first) + int(count)
                         for first, _, count in
                         (line.split() for line in f))
        if os.geteuid() != 0 or not mapped:
            # The sandbox maps no uid but root: run by
            # //tests/robustness:host_faults_permission_test.
            self.skipTest('cannot give a directory to uid 65534 here')
        runtime = os.path.join(self.workdir, 'run-user-65534')
        os.makedirs(runtime, exist_ok=True)
        os.chown(runtime, 65534, 65534)
        os.chmod(runtime, 0o700)
        server = self.start_server(
            self.POOL, address=self.address,
            env=dict(os.environ, XDG_RUNTIME_DIR=runtime))
        self.assertIn('XDG_RUNTIME_DIR=%s belongs to uid 65534' % runtime,
                      server.log())
        self.assertEqual(os.listdir(runtime), [])
        fallback = '/tmp/portserver-%d' % os.geteuid()
        name = self.address[1:]
        self.assertTrue(any(n.startswith(name) and n.endswith('.journal')
                            for n in os.listdir(fallback)),
                        os.listdir(fallback))
        self.assertEqual(server.stop(), 0, server.log())


class NetnsJournalTest(FaultTestBase):
    """Default servers on one abstract address in two network namespaces.

    `@x` exists once per network namespace: a server in `unshare -n` (a
    container, a Bazel block-network test) is another server than the
    host's, with its own journal.
    """
    POOL = '35300-35309'
    POOL_PORTS = range(35300, 35310)
    OTHER_POOL = '35310-35319'

    def start_default(self, runtime, pool, netns=False):
        server = harness.Server(
            pool, address=self.address,
            env=dict(os.environ, XDG_RUNTIME_DIR=runtime))
        if netns:
            server.argv = ['unshare', '-n'] + server.argv  # Execs: same pid.
        self.servers.append(server)
        return server.start()

    def test_servers_in_two_netns_do_not_share_the_default_journal(self):
        runtime = os.path.join(self.workdir, 'runtime')
        os.makedirs(runtime, exist_ok=True)
        host = self.start_default(runtime, self.POOL)
        other = self.start_default(runtime, self.OTHER_POOL, netns=True)
        self.assertTrue(other.running, other.log())
        self.assertEqual(other.stop(), 0, other.log())
        self.assertEqual(host.stop(), 0, host.log())

    def test_other_netns_leaves_the_host_journal_alone(self):
        runtime = os.path.join(self.workdir, 'runtime2')
        os.makedirs(runtime, exist_ok=True)
        host = self.start_default(runtime, self.POOL)
        owner = self.owner()
        held = self.lease(host, owner, 3)
        self.assertEqual(host.stop(), 0)
        # While the host server is down, a server in another namespace on
        # the same address and another pool starts and stops cleanly.
        other = self.start_default(runtime, self.OTHER_POOL, netns=True)
        self.assertFalse(any('dropping' in l for l in messages(other)),
                         other.log())
        self.assertEqual(other.stop(), 0, other.log())
        host = self.start_default(runtime, self.POOL)
        self.assert_stats(host, {'leased-ports': len(held)})

    def start_narrower(self, journal):
        """A server on POOL leases 2 ports to a live owner and stops; one on
        OTHER_POOL starts with its journal. Returns (that server, the
        owner, the 2 ports)."""
        server = self.start_server(
            self.POOL, address=self.address,
            args=['--portserver_state_file=' + journal])
        owner = self.owner()
        held = self.lease(server, owner, 2)
        self.assertEqual(server.stop(), 0)
        narrow = self.start_server(
            self.OTHER_POOL, address=self.address,
            args=['--portserver_state_file=' + journal])
        return narrow, owner, held

    def test_leases_outside_the_pool_are_not_dropped_silently(self):
        journal = os.path.join(self.workdir, 'pools.journal')
        server, owner, held = self.start_narrower(journal)
        warned = [l for l in messages(server)
                  if 'outside this server' in l and l.startswith('W')]
        self.assertEqual(len(warned), 1, server.log())
        for port in held:
            self.assertIn(str(port), warned[0])
        self.assertIn('are carried', warned[0])
        # One start under the other pool (a mistyped flag) no longer frees
        # them for good: the journal keeps them while their owner lives,
        # and the server started again with the first pool restores them
        # and leases them to no one else (they were dropped, and handed out
        # again while their owner lived: a new user's trial).
        self.assertEqual(server.stop(), 0)
        self.assertIn('kept: 0 live lease(s) and 2 carried lease(s)',
                      server.log())
        server = self.start_server(
            self.POOL, address=self.address,
            args=['--portserver_state_file=' + journal])
        self.assert_stats(server, {'leased-ports': len(held)})
        other = self.owner()
        for port in self.lease(server, other, 8):
            self.assertNotIn(port, held, server.log())
        # Carried no further once the owner has ended.
        self.assertEqual(server.stop(), 0)
        harness.kill_owner(owner)
        server = self.start_server(
            self.OTHER_POOL, address=self.address,
            args=['--portserver_state_file=' + journal])
        self.assertFalse(any('are carried' in l and str(held[0]) in l
                             for l in messages(server)), server.log())

    def test_a_carried_lease_can_be_released_early(self):
        # `release` of a carried port said "not in the pool" (a new user's
        # trial): it ends the lease, its lock goes, and the journal no
        # longer brings it back.
        journal = os.path.join(self.workdir, 'carried-release.journal')
        narrow, owner, held = self.start_narrower(journal)
        self.assert_stats(narrow, {'carried-leases': 2})
        reply = harness.raw_exchange(
            narrow.address, b'portserver/1 release ports=%d\n' % held[0])
        self.assertEqual(reply,
                         b'portserver/1 ok released=%d\nend\n' % held[0],
                         narrow.log())
        self.assert_stats(narrow, {'carried-leases': 1})
        reply = harness.raw_exchange(
            narrow.address, b'portserver/1 who ports=%d\n' % held[0]).decode()
        self.assertIn('state=not-in-pool', reply)
        # Killed, not stopped: a clean stop rewrites the journal anyway,
        # so only the release's own rewrite keeps the lease out (a
        # reviewer).
        narrow.kill()
        server = self.start_server(
            self.POOL, address=self.address,
            args=['--portserver_state_file=' + journal])
        self.assert_stats(server, {'leased-ports': 1})
        reply = harness.raw_exchange(
            server.address, b'portserver/1 who ports=%d,%d\n' % tuple(held))
        self.assertIn(b'state=leased port=%d pid=%d ' % (held[1], owner.pid),
                      reply)
        self.assertNotIn(b'state=leased port=%d ' % held[0], reply)

    def test_carried_leases_keep_neighbours_off_their_ports(self):
        journal = os.path.join(self.workdir, 'carried-locks.journal')
        # Started again under a narrower pool: the two leases are carried.
        narrow, owner, held = self.start_narrower(journal)
        self.assertTrue(any('are carried' in l for l in messages(narrow)),
                        narrow.log())
        self.assert_stats(narrow, {'carried-leases': len(held)})
        # `who` names their owner.
        reply = harness.raw_exchange(
            narrow.address,
            b'portserver/1 who ports=%d,35320\n' % held[0]).decode()
        self.assertIn('state=carried port=%d pid=%d ' % (held[0], owner.pid),
                      reply)
        self.assertIn('state=not-in-pool port=35320', reply)
        # A neighbouring server whose pool holds them leases neither while
        # their owner lives: the carried leases hold the ports' locks (they
        # took none, and the neighbour handed them to its own clients).
        neighbour = self.start_server(
            self.POOL, address=harness.new_address(),
            args=['--portserver_state_file=' +
                  os.path.join(self.workdir, 'neighbour.journal')])
        other = self.owner()
        got = self.lease(neighbour, other, len(self.POOL_PORTS) - len(held))
        self.assertFalse(set(got) & set(held), neighbour.log())
        self.assertIsNone(harness.ask(neighbour.address, other.pid),
                          neighbour.log())
        # The narrow server lets go of them as soon as their owner ends
        # (its exit is watched, as a lease's owner's is): the neighbour then
        # leases them, while the narrow server still runs.
        harness.kill_owner(owner)
        def who(port):
            return harness.raw_exchange(
                narrow.address, b'portserver/1 who ports=%d\n' % port).decode()
        self.assertTrue(
            harness.poll_until(lambda: 'state=not-in-pool' in who(held[-1]),
                               10), narrow.log())
        self.assertEqual(
            sorted(self.lease(neighbour, other, len(held))), sorted(held),
            neighbour.log())
        self.assertEqual(neighbour.stop(), 0)
        self.assertEqual(narrow.stop(), 0, narrow.log())


class StartupLineTest(FaultTestBase):
    POOL = '35200-35209'

    def test_startup_line_says_what_happened(self):
        journal = os.path.join(self.workdir, 'fresh.journal')
        server = self.start(journal)
        lines = [l for l in messages(server) if 'State file' in l]
        self.assertTrue(any('no leases to restore' in l for l in lines),
                        server.log())
        self.assertFalse(any('0 of 0' in l for l in lines), server.log())
        # A journal named on the command line: no word of XDG_RUNTIME_DIR.
        self.assertFalse(any('XDG_RUNTIME_DIR' in l for l in lines),
                         server.log())
        owner = self.owner()
        self.lease(server, owner, 3)
        server = self.crash_and_restart(server, journal)
        self.assertTrue(any('restored 3 of 3' in l and 'live' in l
                            for l in messages(server)), server.log())


class OthersFilesTest(FaultTestBase):
    POOL = '35400-35409'
    PRECIOUS = b'precious data\nline 2\n'
    REMEDY = 'remove it or choose another --portserver_state_file'

    def path(self, name):
        return os.path.join(self.workdir, name)

    def write(self, path, data):
        with open(path, 'wb') as f:
            f.write(data)

    def read(self, path):
        with open(path, 'rb') as f:
            return f.read()

    def assert_refused(self, state_file, names, says):
        """The server refuses `state_file`: exit 2, before serving, with one
        error line naming `names`, saying `says` and what to do."""
        status, out, err = harness.run_binary(
            ['--portserver_address=' + self.address,
             '--portserver_static_pool=' + self.POOL,
             '--portserver_state_file=' + state_file], timeout=10)
        self.assertEqual(status, 2, 'expected exit 2 (refused)\n' + err)
        self.assertNotIn('Serving on', err)
        errors = [l for l in err.splitlines()
                  if l.startswith('portserver: error: ')]
        self.assertEqual(len(errors), 1, err)
        for text in (names, says, self.REMEDY):
            self.assertIn(text, errors[0])

    def test_a_file_that_is_not_a_journal_is_refused_and_kept(self):
        # A typo: --portserver_state_file=/etc/default/portserver. The server
        # once logged "line 1: not a portserver-journal 1 header", rewrote
        # the file as an empty journal and deleted it at a clean stop.
        precious = self.path('precious.txt')
        self.write(precious, self.PRECIOUS)
        self.assert_refused(precious, precious, 'not a portserver journal')
        self.assertEqual(self.read(precious), self.PRECIOUS)
        self.assertEqual(sorted(os.listdir(self.workdir)), ['precious.txt'],
                         'a refusal leaves nothing beside the file')

    def test_what_is_not_a_regular_file_is_refused_and_kept(self):
        directory = self.path('a-directory')
        os.mkdir(directory)
        self.assert_refused(directory, directory, 'is a directory')
        fifo = self.path('a-fifo')
        os.mkfifo(fifo)
        self.assert_refused(fifo, fifo, 'is a FIFO')
        self.assert_refused('/dev/null', '/dev/null', 'is a character device')
        self.assertFalse(os.path.exists('/dev/null.lock'))
        journal = self.path('real.journal')
        self.write(journal, b'portserver-journal 1\n')
        link = self.path('link.journal')
        os.symlink(journal, link)  # Compaction would rename over the link.
        self.assert_refused(link, link, 'is a symbolic link')
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.isdir(directory))
        self.assertTrue(os.path.exists(fifo))
        self.assertEqual(sorted(os.listdir(self.workdir)),
                         ['a-directory', 'a-fifo', 'link.journal',
                          'real.journal'])

    def test_a_lock_or_tmp_that_is_not_the_servers_is_refused_and_kept(self):
        journal = self.path('x.journal')
        self.write(journal + '.lock', self.PRECIOUS)  # Deleted at a stop.
        self.assert_refused(journal, journal + '.lock', 'is not empty')
        self.assertEqual(self.read(journal + '.lock'), self.PRECIOUS)
        os.unlink(journal + '.lock')
        self.write(journal + '.tmp', self.PRECIOUS)  # Truncated, renamed.
        self.assert_refused(journal, journal + '.tmp',
                            'not a portserver journal')
        self.assertEqual(self.read(journal + '.tmp'), self.PRECIOUS)
        self.assertEqual(sorted(os.listdir(self.workdir)), ['x.journal.tmp'])

    def test_empty_file_and_left_lock_are_taken(self):
        journal = self.path('empty.journal')
        self.write(journal, b'')
        self.write(journal + '.lock', b'')  # Left by a kill -9.
        server = self.start(journal)
        # A snapshot of no lease: the header and this boot's id.
        header, boot, rest = self.read(journal).split(b'\n', 2)
        self.assertEqual((header, boot[:2], rest),
                         (b'portserver-journal 1', b'B ', b''))
        self.assertEqual(server.stop(), 0)
        self.assertEqual(os.listdir(self.workdir), [])

    def test_journal_damaged_after_its_header_is_still_restored(self):
        journal = self.path('damaged.journal')
        server = self.start(journal)
        owner = self.owner()
        held = self.lease(server, owner, 2)
        self.assertEqual(server.kill(), -signal.SIGKILL)
        with open(journal, 'ab') as f:
            f.write(b'precious data\n')
        server = self.start(journal)
        self.assertTrue(any('skipped' in l and l.startswith('W')
                            for l in messages(server)), server.log())
        self.assert_stats(server, {'leased-ports': len(held)})


if __name__ == '__main__':
    harness.main('host_faults_test')
