"""Which targets exist on which platform.

portserver builds for Linux (the host toolchain) and for Windows
(--config=mingw, see toolchains/mingw/). A target that cannot exist on
Windows (pidfds, /proc, AF_UNIX, the Linux adapters, tests that run the
daemon natively) says so:

    load("//:platforms.bzl", "LINUX_ONLY")

    cc_test(
        name = "linux_port_probe_test",
        ...
        target_compatible_with = LINUX_ONLY,
    )

`bazel build|test --config=mingw //...` then skips it instead of failing,
and skips whatever depends on it too; naming it on the command line is an
error. Linux builds are unaffected.
"""

# str(Label()): the key resolves in this repository even when another workspace
# (examples/workspace) loads this file through @portserver.
LINUX_ONLY = select({
    str(Label("//:windows")): ["@platforms//:incompatible"],
    "//conditions:default": [],
})
