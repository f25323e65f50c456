"""A python test under portserver_test (a py_binary: see .bazelrc).

Each round picks two ports with portpicker.pick_unused_port(), which asks
the server at PORTSERVER_ADDRESS on behalf of this process: the lease lasts
as long as this process, i.e. the whole test. Binds each at once (TCP,
listening, and UDP; no SO_REUSEADDR) and keeps it bound to the end. Fails on
a port outside PORTSERVER_POOL, the same port twice, or a port someone else
has bound (COLLISION).
"""
import errno
import os
import socket
import sys

import portpicker  # Debian's python3-portpicker


def main(rounds):
    first, last = (int(p) for p in os.environ['PORTSERVER_POOL'].split('-'))
    held, seen = [], set()
    for _ in range(rounds):
        for _ in range(2):
            port = portpicker.pick_unused_port()
            if not first <= port <= last or port in seen:
                print('port %d: outside the pool %s or handed out twice'
                      % (port, os.environ['PORTSERVER_POOL']))
                return 1
            seen.add(port)
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(('', port))
                except OSError as error:
                    if error.errno == errno.EADDRINUSE:
                        print('COLLISION: port %d is bound by another process'
                              % port)
                        return 1
                    raise
                if kind == socket.SOCK_STREAM:
                    s.listen(1)
                held.append(s)
    print('py_ports: %d ports leased and bound: %s'
          % (len(seen), sorted(seen)))
    return 0


if __name__ == '__main__':
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
