#!/usr/bin/env bash
# The test that runner_test.sh runs under the runner. Usage:
#   inner_test.sh env EXIT_CODE   checks what the runner passes, exits EXIT_CODE
#   inner_test.sh lifetime        the lease-lifetime rule, with a one-port pool
set -u
fail() { echo "inner_test: FAIL: $*"; exit 100; }
ask_as_own_pid() {  # a helper process that asks for its own pid, then exits
  /usr/bin/python3 -c 'import os, portpicker
print(portpicker.get_port_from_port_server(os.environ["PORTSERVER_ADDRESS"]))'
}

case $1 in
  quota)
    # The runner passed --portserver_max_ports_per_pid=1: one port, then a
    # denial that names the quota.
    portpicker --no-fallback $$ >/dev/null || fail "the first port was denied"
    if err=$(portpicker --no-fallback $$ 2>&1 >/dev/null); then
      fail "a second port was granted despite the quota"
    fi
    grep -q "quota" <<<"$err" || fail "the denial does not name the quota: $err"
    echo "inner_test: quota ok ($err)"
    exit 0
    ;;
  env)
    [ -n "${PORTSERVER_ADDRESS:-}" ] || fail "PORTSERVER_ADDRESS not set"
    [ -n "${PORTSERVER_POOL:-}" ] || fail "PORTSERVER_POOL not set"
    [ -x "${PORTPICKER:-}" ] || fail "PORTPICKER '${PORTPICKER:-}' is not executable"
    command -v portpicker >/dev/null || fail "portpicker is not on PATH"
    first=${PORTSERVER_POOL%-*} last=${PORTSERVER_POOL#*-}
    a=$(portpicker $$) || fail "portpicker failed"
    b=$(portpicker $$) || fail "portpicker failed"
    for p in "$a" "$b"; do
      [ "$p" -ge "$first" ] && [ "$p" -le "$last" ] || fail "$p outside $PORTSERVER_POOL"
    done
    [ "$a" != "$b" ] || fail "the same port twice: $a"
    echo "inner_test: ports $a $b"
    exit "$2"
    ;;
  lifetime)
    # Asked for this shell's pid, the only port stays leased while the shell
    # lives: nobody else gets it.
    mine=$(portpicker $$) || fail "portpicker failed"
    [ "$mine" = "$PORTSERVER_POOL" ] || fail "got $mine, pool $PORTSERVER_POOL"
    other=$(ask_as_own_pid)
    [ "$other" = None ] || fail "port $mine leased to this shell went to another process: $other"
    echo "inner_test: lifetime ok ($mine kept)"
    exit 0
    ;;
  lifetime-helper)
    # Asked for a helper's own pid, the port is free again once it exits.
    first=$(ask_as_own_pid)
    [ "$first" = "$PORTSERVER_POOL" ] || fail "got $first, pool $PORTSERVER_POOL"
    second=$(ask_as_own_pid)
    [ "$second" = "$first" ] || fail "expected $first again once its owner exited, got $second"
    echo "inner_test: a helper's lease ended with it ($first handed out twice)"
    exit 0
    ;;
esac
fail "unknown mode $1"
