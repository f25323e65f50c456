"""LineCollector: drains a child's output pipe on a thread, line by line, so
that tests wait for a log line (bounded) instead of sleeping. Shared by
tests/compat_test.py and tests/robustness/.
"""
import threading
import time


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
