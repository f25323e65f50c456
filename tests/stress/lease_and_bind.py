"""Stress client for portserver_test: leases ports and binds every one.

Run by portserver_test (PORTSERVER_ADDRESS and PORTSERVER_POOL set). For each
round it starts a child process, leases --ports ports on the child's behalf
with the python portpicker client, and binds each leased port for TCP (with
listen) and UDP on the wildcard address, keeping them bound while the next
round leases and binds. A port bound by another test means two servers
handed out the same port at the same time: the run fails with COLLISION.
The child of round r is killed after round r+1 has bound its ports, so dead
owners' ports are reclaimed as the run goes on.

Prints one summary line: rounds, ports leased, collisions.
"""
import argparse
import errno
import os
import socket
import subprocess
import sys

import portpicker


def bind_all(port):
    """Binds TCP (listening) and UDP on the wildcard address; returns socks."""
    socks = []
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
        try:
            s = socket.socket(family, kind)
        except OSError:
            s = socket.socket(socket.AF_INET, kind)
        socks.append(s)
        s.bind(('', port))
        if kind == socket.SOCK_STREAM:
            s.listen(1)
    return socks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--ports', type=int, default=20)
    args = parser.parse_args()
    address = os.environ['PORTSERVER_ADDRESS']
    first, last = (int(x) for x in os.environ['PORTSERVER_POOL'].split('-'))

    held = []  # (child, sockets) of the previous round
    leased = 0
    for round_number in range(args.rounds):
        child = subprocess.Popen(['sleep', '600'])
        sockets = []
        try:
            for _ in range(args.ports):
                port = portpicker.get_port_from_port_server(address, pid=child.pid)
                if port is None:
                    print('DENIED: round %d, after %d ports' % (round_number, leased))
                    return 1
                if not first <= port <= last:
                    print('OUTSIDE POOL: %d' % port)
                    return 1
                leased += 1
                try:
                    sockets += bind_all(port)
                except OSError as error:
                    if error.errno == errno.EADDRINUSE:
                        print('COLLISION: port %d leased to pid %d is bound by '
                              'someone else' % (port, child.pid))
                    else:
                        print('bind %d failed: %s' % (port, error))
                    return 1
        finally:
            for previous_child, previous_sockets in held:
                for s in previous_sockets:
                    s.close()
                previous_child.kill()
                previous_child.wait()
            held = [(child, sockets)]
    for child, sockets in held:
        for s in sockets:
            s.close()
        child.kill()
        child.wait()
    print('rounds %d, ports leased and bound %d, collisions 0' % (args.rounds, leased))
    return 0


if __name__ == '__main__':
    sys.exit(main())
