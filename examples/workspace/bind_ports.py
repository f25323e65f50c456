"""Binds the ports it reads from stdin (numbers separated by blanks) for TCP
(listening) and UDP on the wildcard address, without SO_REUSEADDR, and keeps
them bound until stdin ends. A port someone else has bound is a collision:
prints COLLISION and exits 1 at the end. Used by two_ports.sh."""
import errno
import socket
import sys

held, collisions = [], 0
for line in sys.stdin:
    for port in map(int, line.split()):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(('', port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                collisions += 1
                print('COLLISION: port %d is bound by another process' % port)
                s.close()
                continue
            if kind == socket.SOCK_STREAM:
                s.listen(1)
            held.append(s)
print('bind_ports: %d sockets bound, %d collisions' % (len(held), collisions))
sys.exit(1 if collisions else 0)
