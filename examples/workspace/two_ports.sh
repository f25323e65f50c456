#!/usr/bin/env bash
# A shell test under portserver_test. Each round leases two ports for this
# script with `portpicker $$` (portserver_test puts the command on PATH) and
# binds them at once; they stay bound until the test ends. A lease lives
# exactly as long as the process it was asked for: $$, this shell, lives for
# the whole test, so no other test on the host is handed these ports
# meanwhile. (A helper such as `python3 -c 'import portpicker; ...'` would
# ask for its own pid, and the port would go back to the pool when it exits.)
#
# Usage: two_ports.sh ROUNDS. Fails on a port outside PORTSERVER_POOL, the
# same port twice, or a port someone else has bound (COLLISION).
set -euo pipefail
rounds=${1:-10}
# The pool: "N-P" ranges (or single ports) separated by commas.
in_pool() {
  local range lo hi
  for range in ${PORTSERVER_POOL//,/ }; do
    lo=${range%-*} hi=${range#*-}
    if [ "$1" -ge "$lo" ] && [ "$1" -le "$hi" ]; then return 0; fi
  done
  return 1
}

# bind_ports.py binds each port it reads (TCP and UDP, no SO_REUSEADDR) and
# keeps it bound until its input ends; its report goes to a file.
report=$(mktemp "${TEST_TMPDIR:-/tmp}/bind_ports.XXXXXX")
exec {binder}> >(exec /usr/bin/python3 "$(dirname "$0")/bind_ports.py" >"$report" 2>&1)
binder_pid=$!

seen=" "
for round in $(seq "$rounds"); do
  a=$(portpicker $$)
  b=$(portpicker $$)
  for port in $a $b; do
    if ! in_pool "$port"; then
      echo "port $port is outside the pool $PORTSERVER_POOL"; exit 1
    fi
    if [[ $seen == *" $port "* ]]; then
      echo "port $port handed out twice"; exit 1
    fi
    seen+="$port "
  done
  echo "$a $b" >&"$binder"
done
exec {binder}>&-  # end of input: the binder reports and exits
wait "$binder_pid" && status=0 || status=$?
cat "$report"
echo "two_ports: $rounds rounds, ports:$seen(pool $PORTSERVER_POOL), binder exit $status"
exit "$status"
