#!/usr/bin/python3
"""Stress: many concurrent clients, owners dying at random, no double lease.

32 client threads make 20,000 requests (plus a warm-up) against a pool of
2000 ports on behalf of short-lived `sleep` owners, while owners are killed
and replaced at random. A ledger of the ports each LIVE owner holds (live:
from its spawn until it is killed and reaped) catches any port granted while
another live owner holds it. Afterwards the server's open file descriptors
must be back to their baseline and its memory must not have grown (under a
sanitizer's allocator, from after a settling run of the same length: see
SANITIZER_SETTLING_REQUESTS).
"""

import os
import random
import threading
import time

import harness

POOL = '30000-31999'           # 2000 ports
THREADS = 32
REQUESTS = 20000               # the measured run
WARMUP_REQUESTS = 3000
LIVE_OWNERS = 48
TURNOVER_EVERY = 50            # one owner killed and replaced per 50 requests
# The server holds a descriptor per live owner it watches (a pidfd); at the
# end one owner (the reclaim probe) is alive, at the baseline none.
FD_SLACK = 2
# Memory bound (kB) on the growth of the server's private dirty memory (its
# heap and stacks; VmRSS when smaps_rollup is missing) from after the warm-up
# to after the run, both measured with every lease released and reclaimed.
# The warm-up already drives the pool, the ledger and the free-port queue
# through every port and dozens of owners, so their containers are near
# their final capacity; what remains is high-water and allocator noise
# (glibc keeps freed chunks; it does not return them page by page). We
# measured +90 kB after 5,000 requests, +150..190 kB after 20,000, +180 kB
# after 60,000 and +188 kB after 120,000: flat, not a leak; over 15 runs
# under Bazel -152..+436 kB, mostly +124..+188 kB. 1 MB still
# catches a leak of >= 50 bytes per request over the 20,000 requests, of
# >= 2.6 kB per owner (400 owners come and go), and of any buffer per
# connection.
MEMORY_BOUND_KB = 1024  # Growth of Anonymous (see memory_kb in harness.py).
# Under a sanitizer's allocator (ASan's, TSan's: sanitizer_common's
# SizeClassAllocator64) each size class has its own region, mapped 64 kB at
# a time and never given to another class, so the footprint is the sum of
# every class's peak, not the peak of the sum: it still rises through the
# first full-length run after a 3,000-request warm-up, long after the live
# heap has stopped growing. Measured (.ci/sanitizers.sh's ASAN_OPTIONS,
# quarantine off), 20,000-request windows after the warm-up: Anonymous
# +692, +100, +48, +44, +12, +48 kB; +692, +92, +4, +8, -12, +52 kB, while
# __sanitizer_get_current_allocated_bytes() read 599,159 bytes after the
# warm-up and again after windows 1, 3 and 5 (never above 601,047), and
# __sanitizer_get_heap_size() went 3.9 MB, 5.2 MB, then 5.35 MB for good.
# The plain build's glibc heap ("in use bytes", malloc_stats) stays within
# 632..645 kB over eight such windows. So under a sanitizer the baseline is
# taken after a settling run of the same length as the measured one, and the
# bound (unchanged) applies to the measured run: a leak of >= 50 bytes per
# request still fails it (a reachable 48-byte string per request: +2832 kB
# under ASan, +2040 kB in the plain build). ASan's stack depot is the other
# artefact: .ci/sanitizers.sh runs this test with fast_unwind_on_malloc=0
# (see there; at 0e48aa4 the default unwinder made ~16,000 new depot
# entries per 20,000 requests, +1 MB per window, with the heap flat).
SANITIZER_SETTLING_REQUESTS = REQUESTS


def sanitizer_allocator(binary):
    """True if `binary` is built with ASan, TSan or MSan (whose runtimes
    replace malloc with sanitizer_common's allocator)."""
    with open(binary, 'rb') as f:
        image = f.read()
    return any(name in image
               for name in (b'__asan_init', b'__tsan_init', b'__msan_init'))


class Ledger(object):
    """Which port each live owner holds, as seen by the clients."""

    def __init__(self):
        self.lock = threading.Lock()
        self.live = {}       # owner id -> Popen
        self.holder = {}     # port -> owner id
        self.held = {}       # owner id -> set of ports
        self.next_id = 0
        self.violations = []
        self.stale_grants = 0   # grants that arrived after their owner died
        self.killed = 0
        self.spawned = 0

    def add_owner(self):
        proc = harness.spawn_owner()
        with self.lock:
            self.next_id += 1
            self.live[self.next_id] = proc
            self.held[self.next_id] = set()
            self.spawned += 1

    def pick(self, rng):
        with self.lock:
            owner = rng.choice(list(self.live))
            return owner, self.live[owner].pid

    def record(self, owner, port):
        with self.lock:
            if owner not in self.live:
                # The owner was killed while the reply was on its way; its
                # ports are free again, so this grant proves nothing.
                self.stale_grants += 1
                return
            other = self.holder.get(port)
            if other is not None:
                self.violations.append(
                    'port %d granted to owner #%d (pid %d) while live owner '
                    '#%d (pid %d) holds it (it holds %d ports)' % (
                        port, owner, self.live[owner].pid, other,
                        self.live[other].pid, len(self.held[other])))
                return
            self.holder[port] = owner
            self.held[owner].add(port)

    def kill_random(self, rng):
        """Kills and reaps a random live owner, then forgets its ports.

        Done under the lock: the server may treat the owner as dead as soon
        as it is killed, so no grant may be recorded between the kill and
        the removal of its ports from the ledger.
        """
        with self.lock:
            if not self.live:
                return
            owner = rng.choice(list(self.live))
            harness.kill_owner(self.live.pop(owner))
            for port in self.held.pop(owner):
                del self.holder[port]
            self.killed += 1

    def kill_all(self):
        with self.lock:
            for owner, proc in list(self.live.items()):
                harness.kill_owner(proc)
                for port in self.held.pop(owner):
                    del self.holder[port]
                self.killed += 1
            self.live.clear()

    def leased(self):
        with self.lock:
            return len(self.holder)


class StressTest(harness.ServerTestCase):

    def setUp(self):
        super().setUp()
        self.ledger = Ledger()
        self.granted = 0
        self.denied = 0
        self.errors = []
        self.count_lock = threading.Lock()
        self.addCleanup(self.ledger.kill_all)

    def run_clients(self, server, requests, seed):
        """THREADS clients make `requests` requests in all, with turnover."""
        issued = [0]
        ledger = self.ledger

        def worker(index):
            rng = random.Random(seed * 1000 + index)
            while True:
                with self.count_lock:
                    if issued[0] >= requests or self.errors:
                        return
                    issued[0] += 1
                    turnover = issued[0] % TURNOVER_EVERY == 0
                try:
                    if turnover:
                        ledger.kill_random(rng)
                        ledger.add_owner()
                    owner, pid = ledger.pick(rng)
                    port = harness.ask(server.address, pid)
                except Exception as e:  # pylint: disable=broad-except
                    with self.count_lock:
                        self.errors.append('%s: %s' % (type(e).__name__, e))
                    return
                with self.count_lock:
                    if port is None:
                        self.denied += 1
                    else:
                        self.granted += 1
                if port is not None:
                    if port not in server.pool:
                        with self.count_lock:
                            self.errors.append('port %d outside the pool'
                                               % port)
                        return
                    ledger.record(owner, port)

        threads = [threading.Thread(target=worker, args=(i,))
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse([t for t in threads if t.is_alive()],
                         'client threads hung\n%s' % server.log())
        self.assertFalse(self.errors, 'client errors (%d), the first ones:\n%s'
                         '\n%s' % (len(self.errors), '\n'.join(self.errors[:5]),
                                   server.log(tail=50)))
        violations = self.ledger.violations
        self.assertFalse(violations, '%d double lease(s), the first ones:\n%s'
                         '\n%s' % (len(violations), '\n'.join(violations[:20]),
                                   server.log(tail=50)))

    def release_and_reclaim(self, server):
        """Kills every owner, then asks for one fresh owner until the server
        has reclaimed all the dead owners' ports; returns the request count."""
        self.ledger.kill_all()
        self.ledger.add_owner()
        requests = 0
        stats = None
        for _ in range(100):
            owner, pid = self.ledger.pick(random.Random(0))
            for _ in range(10):
                port = harness.ask(server.address, pid)
                requests += 1
                self.assertIsNotNone(port, 'request for a fresh owner denied '
                                     'after all others died\n%s' %
                                     server.log())
                self.granted += 1
                self.ledger.record(owner, port)
            stats = server.stats()
            if (stats['owners'] == 1 and
                    stats['leased-ports'] == self.ledger.leased()):
                return requests
        self.fail('dead owners not reclaimed after %d requests: %r\n%s'
                  % (requests, stats, server.log()))

    def test_concurrent_clients_owners_dying(self):
        journal = os.path.join(harness.tmpdir(), 'stress.journal')
        server = self.start_server(
            POOL, args=['--portserver_state_file=' + journal])
        fds_start = harness.fd_count(server.pid)
        mem_start = harness.memory_kb(server.pid)

        for _ in range(LIVE_OWNERS):
            self.ledger.add_owner()
        self.run_clients(server, WARMUP_REQUESTS, seed=1)
        self.release_and_reclaim(server)
        settling = 0
        if sanitizer_allocator(harness.PORTSERVER_BIN):
            # Not measured for memory; still checked for double leases.
            settling = SANITIZER_SETTLING_REQUESTS
            mem_before_settling = harness.memory_kb(server.pid)
            for _ in range(LIVE_OWNERS - 1):
                self.ledger.add_owner()
            self.run_clients(server, settling, seed=3)
            self.release_and_reclaim(server)
        mem_warm = harness.memory_kb(server.pid)
        warm_granted, warm_denied = self.granted, self.denied

        for _ in range(LIVE_OWNERS - 1):
            self.ledger.add_owner()
        killed_before = self.ledger.killed
        started = time.monotonic()
        self.run_clients(server, REQUESTS, seed=2)
        elapsed = time.monotonic() - started
        killed_in_run = self.ledger.killed - killed_before
        run_granted = self.granted - warm_granted
        run_denied = self.denied - warm_denied
        self.release_and_reclaim(server)
        mem_end = harness.memory_kb(server.pid)

        # Each leased port holds its lock, a descriptor (README, Guarantees).
        fds_allowed = fds_start + FD_SLACK + self.ledger.leased()
        fds_end = harness.poll_until(
            lambda: (harness.fd_count(server.pid)
                     if harness.fd_count(server.pid) <= fds_allowed
                     else None), timeout=5.0) or harness.fd_count(server.pid)
        stats = server.stats()
        # Anonymous: the server's own memory. Private_Dirty would also count
        # its binary's page-cache pages while they await writeback.
        key = 'Anonymous' if 'Anonymous' in mem_warm else 'VmRSS'
        growth = mem_end[key] - mem_warm[key]
        if settling:
            print('\nsanitizer allocator: baseline taken after a settling run '
                  'of %d requests; %s grew %+d kB in it (not bounded), from '
                  '%r' % (settling, key,
                          mem_warm[key] - mem_before_settling[key],
                          mem_before_settling))
        print('\nstress figures: %d requests in the run (%d granted, %d '
              'denied) in %.1f s = %.0f requests/s with %d threads; warm-up '
              '%d requests; owners killed %d in the run, %d in all, %d '
              'spawned; stale grants %d; double leases %d; fds start %d, end '
              '%d; memory kB start %r, after warm-up %r, after run %r '
              '(growth of %s: %+d kB, bound %d kB); server stats %r' % (
                  REQUESTS, run_granted, run_denied, elapsed,
                  REQUESTS / elapsed, THREADS, WARMUP_REQUESTS,
                  killed_in_run, self.ledger.killed, self.ledger.spawned,
                  self.ledger.stale_grants, len(self.ledger.violations),
                  fds_start, fds_end, mem_start, mem_warm, mem_end, key,
                  growth, MEMORY_BOUND_KB, stats))

        self.assertEqual(run_granted + run_denied, REQUESTS)
        self.assertGreaterEqual(killed_in_run, REQUESTS // TURNOVER_EVERY)
        self.assertEqual(stats['total-allocations'], self.granted,
                         'server and clients disagree on grants\n%s'
                         % server.log())
        self.assertEqual(stats['denied-allocations'], self.denied,
                         'server and clients disagree on denials\n%s'
                         % server.log())
        self.assertEqual(stats['client-request-errors'], 0, server.log())
        self.assertEqual(stats['refused-connections'], 0, server.log())
        self.assertLessEqual(
            fds_end, fds_allowed,
            'server fds: %d after startup, %d after all clients are done, '
            'with %d ports leased (%s)\n%s' % (fds_start, fds_end,
                                              self.ledger.leased(),
                          sorted(os.readlink('/proc/%d/fd/%s' % (server.pid,
                                                                 fd))
                                 for fd in os.listdir('/proc/%d/fd'
                                                      % server.pid)),
                          server.log()))
        self.assertLess(growth, MEMORY_BOUND_KB,
                        'server memory grew by %d kB (%s) over %d requests '
                        'once all leases were reclaimed: after warm-up%s %r, '
                        'after the run %r' % (growth, key, REQUESTS,
                                              ' and settling' if settling
                                              else '', mem_warm, mem_end))


if __name__ == '__main__':
    harness.main('stress_test')
