#!/bin/bash
# Installs a built .deb on this machine, uses it, purges it, and checks that
# the machine is as before. Changes the system: run it by hand (as root),
# not from Bazel.
#
#   ./bazelw build -c opt //packaging:deb
#   bash packaging/install_check.sh bazel-bin/packaging/portserver_*_amd64.deb
#
# Checks: apt-get install succeeds; python3-portpicker's /usr/bin/portserver
# and its man page are diverted and come back unchanged; the socket unit is
# enabled; the packaged units' command line serves the python client and
# the portpicker command on both of the socket unit's addresses (through
# systemd-socket-activate, in a private network namespace, with only the
# capability the unit keeps and no new privileges, a client of another
# user included); apt-get purge leaves no file behind (a list of /etc,
# /usr, /var/lib, /run and /opt before and after); the python server and
# client still work afterwards.
set -euo pipefail
deb=$(readlink -f "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DEBIAN_FRONTEND=noninteractive
fail() { echo "install_check: FAILED: $*" >&2; exit 1; }
snapshot() {
  find /etc /usr /lib /var/lib /run /opt -xdev \
    \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/ucf \
       -o -path /var/cache -o -path /run/user \) -prune -o -print 2>/dev/null |
    LC_ALL=C sort
}
python_files=(/usr/bin/portserver /usr/share/man/man1/portserver.1.gz)

dpkg-query -W -f='${Status}\n' portserver 2>/dev/null | grep -q 'ok installed' &&
  fail "portserver is installed already; purge it first"
snapshot >"$work/before"
md5sum "${python_files[@]}" >"$work/python.md5" 2>/dev/null || true

echo "== apt-get install $deb"
apt-get install -y -q "$deb" 2>&1 | grep -vE '^\(Reading database' | tail -5
dpkg-divert --list 'portserver*' | sed 's/^/   /'
[ -e /usr/bin/portserver.portpicker ] || ! dpkg -s python3-portpicker >/dev/null 2>&1 ||
  fail "python's portserver not diverted"
help=$(/usr/bin/portserver --help)
[[ "$help" == *--portserver_extra_addresses* ]] || fail "/usr/bin/portserver is not ours"
[ -L /etc/systemd/system/sockets.target.wants/portserver.socket ] ||
  fail "portserver.socket not enabled"
echo "   portserver.socket enabled; /run/systemd/system $([ -d /run/systemd/system ] && echo exists || echo 'absent: not started')"
systemd-analyze verify /lib/systemd/system/portserver.socket \
  /lib/systemd/system/portserver.service || fail "systemd-analyze verify"

echo "== the units' command line, socket-activated, in a private network namespace"
cat >"$work/serve.sh" <<'INNER'
set -eu
cd "$1"
ip link set lo up 2>/dev/null || true
. /etc/default/portserver
mkdir -p /run/portserver /var/lib/portserver
# As portserver.socket + portserver.service: both ListenStream= addresses,
# ExecStart with only CAP_SYS_PTRACE (CapabilityBoundingSet=) and
# NoNewPrivileges=.
systemd-socket-activate -l @unittest-portserver -l /run/portserver/portserver.sock \
  --fdname=portserver:portserver \
  setpriv --bounding-set=-all,+sys_ptrace --no-new-privs \
  /usr/bin/portserver --portserver_state_file=/var/lib/portserver/portserver.journal \
  $PORTSERVER_OPTS 2>server.log &
act=$!
client='import os, portpicker, sys; print(portpicker.get_port_from_port_server(sys.argv[1], pid=os.getpid()))'
a=""
for _ in $(seq 50); do  # until systemd-socket-activate listens
  grep -q 'as 4' server.log && break
  sleep 0.1
done
chmod 0666 /run/portserver/portserver.sock  # SocketMode=0666
a=$(/usr/bin/python3 -c "$client" @unittest-portserver)
b=$(/usr/bin/python3 -c "$client" /run/portserver/portserver.sock)
c=$(PORTSERVER_ADDRESS=@unittest-portserver portpicker $$)
d=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c "$client" /run/portserver/portserver.sock)
echo "   python via @unittest-portserver: $a; via the path: $b; portpicker: $c; python as nobody: $d"
grep -E 'Socket activation|Serving on' server.log | sed 's/^/   /'
grep -E 'CapBnd|NoNewPrivs' /proc/$act/status | sed 's/^/   server /'
kill -TERM "$act"
wait "$act" || { echo "server exit status $?"; exit 1; }
for p in "$a" "$b" "$c" "$d"; do case "$p" in ''|None) exit 1;; esac; done
INNER
unshare -n bash "$work/serve.sh" "$work" || fail "serving through the units' command line"

echo "== apt-get purge portserver"
apt-get purge -y -q portserver 2>&1 | grep -vE '^\(Reading database' | tail -3
snapshot >"$work/after"
if ! diff "$work/before" "$work/after"; then fail "files left behind or lost (diff above)"; fi
echo "   no file added or removed"
if [ -s "$work/python.md5" ]; then
  md5sum -c "$work/python.md5" | sed 's/^/   /'
  address="@install-check-$$"
  /usr/bin/portserver --portserver_address="$address" 2>"$work/py.log" &
  py=$!
  for _ in $(seq 50); do grep -q 'Serving on' "$work/py.log" && break; sleep 0.1; done
  port=$(/usr/bin/python3 -c "import os, portpicker; print(portpicker.get_port_from_port_server('$address', pid=os.getpid()))")
  kill "$py"; wait "$py" 2>/dev/null || true
  echo "   python server and client after purge: port $port"
  case "$port" in ''|None) fail "python3-portpicker after purge";; esac
fi
echo "install_check: OK"
