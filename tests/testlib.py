"""Helpers shared by the python suites (tests/compat_test.py and
tests/robustness/): private addresses, the pool syntax, a raw-reply marker,
an unused pid, running the binary to completion, and LineCollector, which
drains a child's output on a thread so that tests wait for a log line
(bounded) instead of sleeping.
"""
import os
import subprocess
import threading
import time

_address_counter = [0]
_address_lock = threading.Lock()
# Unique to this run: a sandboxed test is often pid 12 every time, and the
# default journal of an address is also looked for in /tmp/portserver-<uid>,
# which the sandbox shares with the host: a journal that a failed run left
# there must not meet a later run's server.
_run_token = os.urandom(4).hex()


def new_address(suite):
    """A fresh private abstract-namespace address, e.g. for suite 'compat'."""
    with _address_lock:
        _address_counter[0] += 1
        return '@portserver-%s-%d-%s-%d' % (suite, os.getpid(), _run_token,
                                            _address_counter[0])


def sockaddr(address):
    """The portpicker convention: a leading '@' is the abstract namespace."""
    return '\0' + address[1:] if address.startswith('@') else address


def pool_ports(pool):
    """'N-P[,N-P...]' (a single N allowed) -> set of ints."""
    ports = set()
    for part in pool.split(','):
        lo, _, hi = part.partition('-')
        ports.update(range(int(lo), int(hi or lo) + 1))
    return ports


class Closed(object):
    """Marker result: the server closed the connection without any byte."""

    def __init__(self, how):
        self.how = how  # 'eof' or 'reset'

    def __repr__(self):
        return '<closed without reply (%s)>' % self.how


def find_nonexistent_pid():
    """A pid no process has now, from the top of the pid range down."""
    with open('/proc/sys/kernel/pid_max') as f:
        pid_max = int(f.read())
    for pid in range(pid_max - 1, max(pid_max - 5000, 2), -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError('could not find an unused pid below %d' % pid_max)


def run_to_completion(argv, timeout):
    """Runs argv to its end: (status, stdout, stderr); AssertionError if it
    is still running after `timeout` seconds."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            '%r did not exit within %.0f s (it must exit: fail fast or print '
            'usage)\nstdout: %r\nstderr: %r' % (argv, timeout, e.stdout,
                                                 e.stderr))
    return (done.returncode, done.stdout.decode('utf-8', 'replace'),
            done.stderr.decode('utf-8', 'replace'))


class LineCollector(object):
    """Drains a pipe on a thread; callers wait for lines (bounded)."""

    def __init__(self, stream):
        self._stream = stream
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            for raw in iter(self._stream.readline, b''):
                with self.cond:
                    self.lines.append(
                        raw.decode('utf-8', 'replace').rstrip('\r\n'))
                    self.cond.notify_all()
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    def count(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, predicate, start=0, timeout=10.0):
        """Index of the first line >= start matching, or None."""
        deadline = time.monotonic() + timeout
        index = start
        with self.cond:
            while True:
                while index < len(self.lines):
                    if predicate(self.lines[index]):
                        return index
                    index += 1
                remaining = deadline - time.monotonic()
                if self.eof or remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def join(self, timeout=5.0):
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._stream.close()

    def text(self, start=0, tail=None):
        with self.cond:
            lines = self.lines[start:]
        if tail is not None and len(lines) > tail:
            lines = ['... (%d lines)' % (len(lines) - tail)] + lines[-tail:]
        return '\n'.join(lines)
