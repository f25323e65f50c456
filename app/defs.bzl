"""portserver_test: runs a test with a private, hermetic port server.

    load("@portserver//app:defs.bzl", "portserver_test")

    portserver_test(
        name = "x_test",
        test = ":x",              # any executable: cc_binary, sh_binary, py_binary
                                  # (py_binary: see the README for .bazelrc)
        pool = "20000-20999",
        server_args = ["--portserver_max_ports_per_pid=4"],  # optional
        args = ["--flag"],
        data = ["testdata.txt"],
    )

Before the test starts, a port server of its own listens on a private
abstract address; the test finds it through PORTSERVER_ADDRESS (python
portpicker and the C++ client read it) and sees the pool in PORTSERVER_POOL.
The portpicker command (//client:portpicker_cli) is on the test's PATH.
After the test, the server stops; the test's exit status is the target's. The
server's log is in the test's undeclared outputs (portserver.log); if the
server cannot start (a bad pool, say), its one-line error is in test.log.

A lease lives exactly as long as the process it was asked for. A shell test
must ask on behalf of itself, `port=$(portpicker $$)`: a helper process
(`python3 -c 'import portpicker; ...'`) that asks for its own pid loses the
port when it exits, a moment later.

Private servers that share the host network never hand out the same port:
each holds a host-wide lock on a port for as long as it leases it (every
portserver does, whatever its flags; see "Guarantees" in the README), so a
host-wide port server on the same pool is no danger either. Tests tagged
"block-network" get a network namespace of their own as well.
"""

load("//:platforms.bzl", "LINUX_ONLY")

# Outside the reference server's default pool (15000-24999) and below Linux's
# default ephemeral range (32768-60999), so that neither a host port server
# nor the kernel's own port choices compete for these ports.
DEFAULT_POOL = "25000-32767"

# The server's flags that take no value (app/options.cc), as given with or
# without "no".
_BOOLEAN_SERVER_FLAGS = [
    prefix + f
    for f in ["debug", "portserver_reserve_pool_in_kernel", "portserver_lock_ports"]
    for prefix in ["", "no"]
]

def portserver_test(
        name,
        test,
        pool = DEFAULT_POOL,
        args = [],
        data = [],
        lock_ports = True,
        server_args = [],
        **kwargs):
    """Runs `test` with a private port server.

    Args:
      name: the test target's name.
      test: label of the executable to run.
      pool: --portserver_static_pool of the private server.
      args: arguments for the test.
      data: files the test needs at run time.
      lock_ports: kept for compatibility; no effect (the per-port locks are
        always held).
      server_args: more flags for the private server, e.g.
        "--portserver_max_ports_per_pid=4" (a test that asks for more is
        denied, and portserver.log says so) or "--debug" (every request in portserver.log). Not
        --portserver_address, --portserver_static_pool (use `pool`),
        --portserver_state_file or --[no]verbose (portserver.log is always
        verbose), which the rule sets.
      **kwargs: anything sh_test takes (size, timeout, tags, env, ...).
    """
    if type(pool) != "string" or not pool:
        fail("portserver_test %s: pool must be a port range such as " % name +
             "\"20000-20999\", not %r" % pool)
    for flag in server_args:
        # Bazel splits each of a test's args as a shell would: one flag must
        # stay one word, or the runner would miscount them.
        for c in [" ", "\t", "\n", "'", "\"", "\\", "$"]:
            if c in flag:
                fail(("portserver_test %s: server_args %r: one flag per " +
                      "item, without spaces, quotes, backslashes or $") %
                     (name, flag))
        # gflags takes -flag and --flag alike.
        bare = flag.lstrip("-").split("=")[0]
        if bare in ["portserver_address", "portserver_unix_socket_address",
                    "portserver_static_pool", "portserver_state_file",
                    "verbose", "noverbose"]:
            fail(("portserver_test %s: server_args may not set %s: the " +
                  "rule sets it (use pool = ... for the pool)") % (name, flag))
        # A flag that takes a value must have it after "=": alone it would
        # take the next word, the rule's own --portserver_address.
        if "=" not in flag and bare not in _BOOLEAN_SERVER_FLAGS:
            fail(("portserver_test %s: server_args %r: give its value " +
                  "with \"=\" (e.g. \"%s=VALUE\")") % (name, flag, flag))
    server = Label("//app:portserver")
    portpicker = Label("//client:portpicker_cli")

    # The runner is a shell script around the Linux daemon: skipped under
    # --config=mingw.
    kwargs["target_compatible_with"] = (
        LINUX_ONLY + kwargs.pop("target_compatible_with", [])
    )
    native.sh_test(
        name = name,
        srcs = [Label("//app:portserver_test_runner.sh")],
        args = [
            "$(rootpath %s)" % server,
            pool,
            str(len(server_args)),
        ] + server_args + [
            "$(rootpath %s)" % portpicker,
            "$(rootpath %s)" % test,
        ] + args,
        data = [server, portpicker, test] + data,
        **kwargs
    )
