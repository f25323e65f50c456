"""External repositories of portserver, all local (no downloads).

A workspace that uses portserver (e.g. through `local_repository`) calls
`portserver_dependencies()` from its WORKSPACE. Each repository is created
only if the workspace does not define one of the same name already.

Bazel 4.2.3 (Debian's bazel-bootstrap) needs stand-ins for @rules_cc,
@rules_java and @remote_coverage_tools; the stand-ins are written by a
repository rule so that they work from any workspace (a local_repository
path inside a macro would be relative to the caller's workspace).
"""

_RULES_CC_DEFS = """\
# Stand-in for @rules_cc: re-exports the native C++ rules.
cc_binary = native.cc_binary
cc_library = native.cc_library
cc_test = native.cc_test
cc_import = native.cc_import
cc_proto_library = native.cc_proto_library
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
objc_library = native.objc_library
objc_import = native.objc_import
fdo_profile = native.fdo_profile
fdo_prefetch_hints = native.fdo_prefetch_hints
"""

_RULES_JAVA_DEFS = """\
# Stand-in for @rules_java: re-exports the native Java rules.
java_binary = native.java_binary
java_library = native.java_library
java_test = native.java_test
java_import = native.java_import
java_plugin = native.java_plugin
java_runtime = native.java_runtime
java_toolchain = native.java_toolchain
java_proto_library = native.java_proto_library
java_lite_proto_library = native.java_lite_proto_library
"""

_PLATFORMS_OS = [
    "android",
    "freebsd",
    "ios",
    "linux",
    "none",
    "openbsd",
    "osx",
    "qnx",
    "tvos",
    "watchos",
    "windows",
]

_PLATFORMS_CPU = [
    "aarch64",
    "arm",
    "arm64",
    "arm64_32",
    "arm64e",
    "armv7",
    "armv7k",
    "i386",
    "mips64",
    "ppc",
    "riscv64",
    "s390x",
    "wasm32",
    "wasm64",
    "x86_32",
    "x86_64",
]

# Stand-in for @bazel_skylib//lib:selects.bzl (Abseil's absl/BUILD.bazel
# uses config_setting_group): "any" and "all" of config_settings, as chains
# of aliases over select(), the way skylib builds them.
_SKYLIB_SELECTS = """\
def _chain(name, settings, visibility, all):
    for i, setting in enumerate(settings):
        link = name if i == 0 else "%s_%d" % (name, i)
        rest = ":%s_%d" % (name, i + 1)
        if i == len(settings) - 1:
            actual = setting
        elif all:
            actual = select({setting: rest, "//conditions:default": setting})
        else:
            actual = select({setting: setting, "//conditions:default": rest})
        native.alias(name = link, actual = actual, visibility = visibility)

def _config_setting_group(name, match_any = [], match_all = [], visibility = None):
    if bool(match_any) == bool(match_all):
        fail("config_setting_group: give exactly one of match_any, match_all")
    _chain(name, match_any or match_all, visibility, all = bool(match_all))

selects = struct(config_setting_group = _config_setting_group)
"""

def _constraints(setting, values, extra = ""):
    lines = [
        "package(default_visibility = [\"//visibility:public\"])",
        "",
        "constraint_setting(name = \"%s\")" % setting,
    ]
    for value in values:
        lines.append("constraint_value(name = \"%s\", constraint_setting = \":%s\")" % (value, setting))
    lines.append("filegroup(name = \"srcs\", srcs = glob([\"**\"]))")
    return "\n".join(lines) + "\n" + extra

def _stand_in_impl(ctx):
    kind = ctx.attr.kind
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    ctx.file("BUILD", "")
    if kind == "rules_cc":
        ctx.file("cc/defs.bzl", _RULES_CC_DEFS)
        ctx.file("cc/BUILD", """\
package(default_visibility = ["//visibility:public"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
)
""")
    elif kind == "rules_java":
        ctx.file("java/defs.bzl", _RULES_JAVA_DEFS)
        ctx.file("java/BUILD", "")
    elif kind == "platforms":
        # The @platforms that Bazel 4.2.3 bundles, plus what it lacks:
        # :incompatible (target_compatible_with, to skip targets that cannot
        # exist on Windows) and cpu:wasm32/wasm64 (named by Abseil's BUILD).
        ctx.file("BUILD", """\
package(default_visibility = ["//visibility:public"])

# No platform has it: target_compatible_with = ["@platforms//:incompatible"]
# marks a target that the current configuration skips.
constraint_setting(name = "incompatible_setting")

constraint_value(
    name = "incompatible",
    constraint_setting = ":incompatible_setting",
)

filegroup(
    name = "srcs",
    srcs = ["BUILD", "WORKSPACE", "//cpu:srcs", "//os:srcs"],
)
""")
        ctx.file("os/BUILD", _constraints("os", _PLATFORMS_OS, "alias(name = \"macos\", actual = \":osx\")\n"))
        ctx.file("cpu/BUILD", _constraints("cpu", _PLATFORMS_CPU))
    elif kind == "bazel_skylib":
        ctx.file("lib/BUILD", "")
        ctx.file("lib/selects.bzl", _SKYLIB_SELECTS)
    elif kind == "remote_coverage_tools":
        ctx.file("BUILD", """\
package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")
""")
    else:
        fail("unknown stand-in kind: " + kind)

_stand_in = repository_rule(
    implementation = _stand_in_impl,
    attrs = {"kind": attr.string(mandatory = True)},
    local = True,
)

def _system_library_impl(ctx):
    path = ctx.path(ctx.attr.path)
    if not path.exists:
        fail("%s is missing: run ./bazelw, which installs the Debian packages" % path)
    if ctx.attr.link_tree:
        for entry in path.readdir():
            ctx.symlink(entry, entry.basename)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    ctx.symlink(ctx.attr.build_file, "BUILD.bazel")

_system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "path": attr.string(mandatory = True),
        "build_file": attr.label(mandatory = True, allow_single_file = True),
        # Whether the repository mirrors the directory's files (sources) or
        # only checks that it exists (libraries found by the linker).
        "link_tree": attr.bool(default = False),
    },
    local = True,
)

def _debian_source_impl(ctx):
    env = ctx.os.environ
    root = env.get("PORTSERVER_DEBIAN_SRC") or env.get("HOME", "") + "/.cache/portserver/debian-src"
    path = ctx.path("%s/%s" % (root, ctx.attr.package))
    if not path.get_child(".complete").exists:
        fail(("The Debian sources of %s are missing from %s: run ./bazelw with " +
              "--config=mingw, which fetches them (apt-get source %s).") %
             (ctx.attr.package, path, ctx.attr.package))
    own = ["WORKSPACE", "BUILD", "BUILD.bazel"] if ctx.attr.build_file else ["WORKSPACE"]
    for entry in path.readdir():
        if entry.basename not in own:
            ctx.symlink(entry, entry.basename)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    if ctx.attr.build_file:
        ctx.symlink(ctx.attr.build_file, "BUILD.bazel")

# A Debian source package, as unpacked by ./bazelw (apt-get source) into
# $PORTSERVER_DEBIAN_SRC/<package> (default ~/.cache/portserver/debian-src):
# for the Windows build, which cannot use the Linux libraries. Only
# --config=mingw builds need it, so a Linux build never fetches it.
_debian_source = repository_rule(
    implementation = _debian_source_impl,
    attrs = {
        "package": attr.string(mandatory = True),
        # Replaces the package's own top-level BUILD file.
        "build_file": attr.label(allow_single_file = True),
    },
    environ = ["PORTSERVER_DEBIAN_SRC", "HOME"],
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def portserver_dependencies():
    """Declares every external repository portserver needs. All are local."""
    _maybe(_stand_in, "rules_cc", kind = "rules_cc")
    _maybe(_stand_in, "rules_java", kind = "rules_java")
    _maybe(_stand_in, "remote_coverage_tools", kind = "remote_coverage_tools")

    # Replaces the @platforms bundled with Bazel 4.2.3 (which native.existing_rule
    # does not see), unless the workspace declared its own before this call.
    _maybe(_stand_in, "platforms", kind = "platforms")
    _maybe(_stand_in, "bazel_skylib", kind = "bazel_skylib")

    # Debian packages: libabsl-dev, libgflags-dev (headers in /usr/include,
    # libraries found by the linker), googletest sources from libgtest-dev.
    _maybe(
        _system_library,
        "system_libs",
        path = "/usr/lib/x86_64-linux-gnu",
        build_file = Label("//third_party/system:BUILD.system_libs"),
    )
    _maybe(
        _system_library,
        "googletest",
        path = "/usr/src/googletest",
        link_tree = True,
        build_file = Label("//third_party/system:BUILD.googletest"),
    )

    # Windows (--config=mingw): Abseil and gflags built from Debian's source
    # packages with their own Bazel files (gflags with a BUILD of ours that
    # picks its Windows sources for the mingw cpu). //third_party:absl and
    # :gflags choose between these and @system_libs.
    _maybe(_debian_source, "com_google_absl", package = "abseil")
    _maybe(
        _debian_source,
        "com_github_gflags_gflags",
        package = "gflags",
        build_file = Label("//third_party/mingw:BUILD.gflags"),
    )
