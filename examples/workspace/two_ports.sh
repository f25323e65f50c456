#!/usr/bin/env bash
# Leases N ports (argument 1) from the test's port server and checks that
# they are distinct and inside PORTSERVER_POOL.
set -eu
n=$1
ports=$(/usr/bin/python3 - "$n" <<'PY'
import os, sys, portpicker
ports = [portpicker.get_port_from_port_server(os.environ['PORTSERVER_ADDRESS'])
         for _ in range(int(sys.argv[1]))]
print(' '.join(str(p) for p in ports))
PY
)
echo "ports: $ports (pool $PORTSERVER_POOL)"
first=${PORTSERVER_POOL%-*} last=${PORTSERVER_POOL#*-}
[ "$(tr ' ' '\n' <<<"$ports" | sort -u | wc -l)" -eq "$n" ] || { echo "not distinct"; exit 1; }
for p in $ports; do
  [ "$p" -ge "$first" ] && [ "$p" -le "$last" ] || { echo "$p outside the pool"; exit 1; }
done
