"""A C++ toolchain for Windows x86-64 from Debian's mingw-w64 cross compiler.

Bazel 4.2.3 cannot describe a mingw cross toolchain through
unix_cc_toolchain_config.bzl (no `targets_windows`, so no `.exe` names), so
this rule calls cc_common.create_cc_toolchain_config_info itself, after
@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl. It needs the Debian
package g++-mingw-w64-x86-64-posix (the -posix thread model: the -win32 one
lacks std::thread and std::mutex); ./bazelw installs it for --config=mingw.

Programs are linked statically (libgcc, libstdc++, winpthread), so they need
no DLL beyond Windows' own.
"""

load(
    "@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl",
    "artifact_name_pattern",
    "feature",
    "flag_group",
    "flag_set",
    "tool_path",
    "with_feature_set",
)
load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")

_COMPILE_ACTIONS = [
    ACTION_NAMES.c_compile,
    ACTION_NAMES.cpp_compile,
    ACTION_NAMES.cpp_header_parsing,
    ACTION_NAMES.cpp_module_compile,
    ACTION_NAMES.cpp_module_codegen,
    ACTION_NAMES.assemble,
    ACTION_NAMES.preprocess_assemble,
    ACTION_NAMES.linkstamp_compile,
]

_CXX_COMPILE_ACTIONS = [
    ACTION_NAMES.cpp_compile,
    ACTION_NAMES.cpp_header_parsing,
    ACTION_NAMES.cpp_module_compile,
    ACTION_NAMES.cpp_module_codegen,
    ACTION_NAMES.linkstamp_compile,
]

_LINK_ACTIONS = [
    ACTION_NAMES.cpp_link_executable,
    ACTION_NAMES.cpp_link_dynamic_library,
    ACTION_NAMES.cpp_link_nodeps_dynamic_library,
]

def _impl(ctx):
    prefix = ctx.attr.tool_prefix
    tool_paths = [
        tool_path(name = "gcc", path = prefix + "gcc-posix"),
        tool_path(name = "cpp", path = prefix + "cpp-posix"),
        tool_path(name = "ld", path = prefix + "ld"),
        tool_path(name = "ar", path = prefix + "ar"),
        tool_path(name = "nm", path = prefix + "nm"),
        tool_path(name = "objcopy", path = prefix + "objcopy"),
        tool_path(name = "objdump", path = prefix + "objdump"),
        tool_path(name = "strip", path = prefix + "strip"),
        tool_path(name = "gcov", path = prefix + "gcov-posix"),
        tool_path(name = "dwp", path = "/bin/false"),
        tool_path(name = "llvm-cov", path = "/bin/false"),
    ]

    features = [
        # Executables get the .exe suffix, shared libraries .dll.
        feature(name = "targets_windows", enabled = True),
        feature(name = "supports_pic", enabled = False),
        feature(name = "opt"),
        feature(name = "dbg"),
        feature(name = "fastbuild"),
        feature(
            name = "default_compile_flags",
            enabled = True,
            flag_sets = [
                flag_set(
                    actions = _COMPILE_ACTIONS,
                    flag_groups = [flag_group(flags = [
                        # Reproducible outputs, as Bazel's own toolchains do.
                        "-Wno-builtin-macro-redefined",
                        "-D__DATE__=\"redacted\"",
                        "-D__TIMESTAMP__=\"redacted\"",
                        "-D__TIME__=\"redacted\"",
                        "-fno-canonical-system-headers",
                    ])],
                ),
                flag_set(
                    actions = _CXX_COMPILE_ACTIONS,
                    flag_groups = [flag_group(flags = ["-std=c++17"])],
                ),
                flag_set(
                    actions = _COMPILE_ACTIONS,
                    flag_groups = [flag_group(flags = ["-O2", "-DNDEBUG"])],
                    with_features = [with_feature_set(features = ["opt"])],
                ),
                flag_set(
                    actions = _COMPILE_ACTIONS,
                    flag_groups = [flag_group(flags = ["-g"])],
                    with_features = [with_feature_set(features = ["dbg"])],
                ),
            ],
        ),
        feature(
            name = "default_link_flags",
            enabled = True,
            flag_sets = [
                flag_set(
                    actions = _LINK_ACTIONS,
                    flag_groups = [flag_group(flags = [
                        "-static",
                        "-static-libgcc",
                        "-static-libstdc++",
                    ])],
                ),
            ],
        ),
        # After every object and library: the C++ runtime and winpthread,
        # grouped (libstdc++'s std::thread needs winpthread, and back).
        feature(
            name = "default_link_libs",
            enabled = True,
            flag_sets = [
                flag_set(
                    actions = _LINK_ACTIONS,
                    flag_groups = [flag_group(flags = [
                        "-Wl,--start-group",
                        "-lstdc++",
                        "-lpthread",
                        "-Wl,--end-group",
                    ])],
                ),
            ],
        ),
    ]

    return cc_common.create_cc_toolchain_config_info(
        ctx = ctx,
        features = features,
        cxx_builtin_include_directories = ctx.attr.builtin_include_directories,
        toolchain_identifier = "x64_windows_mingw",
        host_system_name = "x86_64-unknown-linux-gnu",
        target_system_name = "x86_64-w64-mingw32",
        target_cpu = "x64_windows_mingw",
        target_libc = "mingw",
        compiler = "mingw-gcc",
        abi_version = "local",
        abi_libc_version = "local",
        tool_paths = tool_paths,
        artifact_name_patterns = [
            artifact_name_pattern(
                category_name = "executable",
                prefix = "",
                extension = ".exe",
            ),
        ],
    )

mingw_cc_toolchain_config = rule(
    implementation = _impl,
    attrs = {
        "tool_prefix": attr.string(default = "/usr/bin/x86_64-w64-mingw32-"),
        "builtin_include_directories": attr.string_list(default = [
            "/usr/lib/gcc/x86_64-w64-mingw32/",
            "/usr/x86_64-w64-mingw32/include",
        ]),
    },
    provides = [CcToolchainConfigInfo],
)
