#!/bin/sh
# What the per-port locks cost with the pool 1-65535 fully leased: the
# server's descriptors, and kernel memory (the UNIX and sock_inode_cache slab
# caches, and Slab in /proc/meminfo), before and after leasing every port to
# one live process. Runs in a network namespace of its own (unshare -n), so
# no port or name of the host is touched; needs root. The server raises its
# soft descriptor limit to the hard one; to lease all 65535 ports with locks
# the hard limit must allow about 65535 + 200 (one owner), or 2 x 65535 +
# 1152 (one port per owner): raise it first (ulimit -Hn, needs
# CAP_SYS_RESOURCE). Below that, the script shows what happens at the limit:
# further requests are denied and counted as port-probe-failures.
#
#   ./bazelw build -c opt //app:portserver && sh bench/lock_cost.sh bazel-bin/app/portserver
#
# Slab figures are host-wide: run it on a quiet host, and read them as
# bytes per lock (the delta of the UNIX cache is ours alone, give or take
# other programs' Unix sockets).
set -eu
server=$(realpath "${1:?usage: lock_cost.sh PORTSERVER_BINARY}")
exec unshare -n sh -c 'ip link set lo up && exec /usr/bin/python3 - "$0"' \
  "$server" <<'PY'
import os, re, signal, socket, subprocess, sys, time

server_bin = sys.argv[1]
address = '@portserver-lock-cost-%d' % os.getpid()

def slab():
    """({cache: (objects, object size)} from /proc/slabinfo, Slab bytes)."""
    caches = {}
    with open('/proc/slabinfo') as f:
        for line in f:
            fields = line.split()
            if len(fields) > 3 and fields[1].isdigit():
                caches[fields[0]] = (int(fields[1]), int(fields[3]))
    # The Unix socket caches, which SLUB may merge into others, by sysfs.
    for name in ('UNIX-STREAM', 'UNIX'):
        try:
            with open('/sys/kernel/slab/%s/objects' % name) as f:
                objects = int(f.read().split()[0])
            with open('/sys/kernel/slab/%s/object_size' % name) as f:
                caches[name + ' (sysfs)'] = (objects, int(f.read()))
        except OSError:
            pass
    with open('/proc/meminfo') as f:
        meminfo = dict(re.findall(r'^(\w+):\s+(\d+) kB', f.read(), re.M))
    return caches, int(meminfo['Slab']) * 1024

def ask(pid):
    s = socket.socket(socket.AF_UNIX)
    s.connect('\0' + address[1:])
    s.sendall(b'%d\n' % pid)
    data = s.recv(16)
    s.close()
    return int(data) if data else None

def fds(pid):
    return len(os.listdir('/proc/%d/fd' % pid))

proc = subprocess.Popen([server_bin, '--portserver_static_pool=1-65535',
                         '--portserver_address=' + address,
                         '--portserver_state_file=none',
                         '--portserver_max_ports_per_pid=0'],
                        stderr=subprocess.PIPE, text=True)
for line in proc.stderr:
    if ' W' in line[:1] or line.startswith('W'):
        sys.stdout.write(line)
    if 'Serving on' in line:
        break
with open('/proc/%d/limits' % proc.pid) as f:
    print([l.strip() for l in f if l.startswith('Max open files')][0])
fds_before = fds(proc.pid)
with open('/proc/sys/vm/drop_caches', 'w') as f:
    f.write('2\n')  # Reclaimable slab, so that the deltas are ours.
caches_before, slab_before = slab()
start = time.monotonic()
leased = 0
while ask(os.getpid()) is not None:
    leased += 1
elapsed = time.monotonic() - start
caches_after, slab_after = slab()
fds_after = fds(proc.pid)
proc.send_signal(signal.SIGTERM)
_, log = proc.communicate(timeout=60)
stats = dict(re.findall(r'\] ([a-z-]+) (\d+)$', log, re.M))
print('total-allocations %s, denied-pool-exhausted %s, port-probe-failures '
      '%s' % (stats.get('total-allocations'),
              stats.get('denied-pool-exhausted'),
              stats.get('port-probe-failures')))

print('leased %d ports in %.1f s (until the first denial)' % (leased, elapsed))
print('server descriptors: %d before, %d after (%+d)' %
      (fds_before, fds_after, fds_after - fds_before))
# What one bound AF_UNIX socket and its descriptor take: the socket (the
# UNIX-STREAM cache, which SLUB may merge into another, so read by sysfs),
# its inode, dentry and file, the bound name (kmalloc-64) and LSM blobs.
# Other caches that grew (buffer_head, extent_status, ...) are other
# programs' disk I/O on a shared host.
SOCKET_CACHES = ('UNIX-STREAM (sysfs)', 'sock_inode_cache', 'dentry', 'filp',
                 'kmalloc-64', 'lsm_inode_cache', 'lsm_file_cache')
per_port = 0
for name in SOCKET_CACHES:
    if name not in caches_after:
        continue
    n1, size = caches_after[name]
    n0 = caches_before.get(name, (0, size))[0]
    delta = (n1 - n0) * size
    per_port += delta // max(leased, 1)
    print('slab %-22s %+7d objects x %4d bytes = %+6.1f MB, %4d bytes a '
          'leased port' % (name, n1 - n0, size, delta / 1e6,
                           delta // max(leased, 1)))
print('locks: about %d bytes of kernel memory a leased port; %.0f MB for '
      '65535' % (per_port, per_port * 65535 / 1e6))
print('/proc/meminfo Slab %+.1f MB: %d bytes a leased port (host-wide, '
      'includes others)' % ((slab_after - slab_before) / 1e6,
                            (slab_after - slab_before) // max(leased, 1)))
PY
