"""portserver_fuzzer: a libFuzzer target and its regression test.

portserver_fuzzer(name = "x_fuzzer", srcs = ["x_fuzzer.cc"], deps = [...])
declares

  x_fuzzer                   the libFuzzer binary, clang only: tagged
                             "manual", build it with --config=fuzz
                             (.ci/fuzz.sh runs it);
  x_fuzzer_regression_test   the same LLVMFuzzerTestOneInput under a plain
                             main() (fuzz_regression_main.cc) that replays
                             corpus/x_fuzzer/: any compiler, part of //...
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")
load("//:copts.bzl", "PORTSERVER_COPTS")
load("//:platforms.bzl", "LINUX_ONLY")

# The fuzz target's own flags. --config=fuzz instruments its dependencies
# (-fsanitize=fuzzer-no-link,address,undefined); -fsanitize-link-c++-runtime
# because Bazel links with clang, not clang++ (UBSan's vptr check needs the
# C++ part of its runtime).
FUZZER_COPTS = [
    "-fsanitize=fuzzer,address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
]

FUZZER_LINKOPTS = [
    "-fsanitize=fuzzer,address,undefined",
    "-fsanitize-link-c++-runtime",
]

def portserver_fuzzer(name, srcs, deps, tags = []):
    cc_binary(
        name = name,
        srcs = srcs,
        copts = PORTSERVER_COPTS + FUZZER_COPTS,
        linkopts = FUZZER_LINKOPTS,
        deps = deps + ["//fuzz:fuzz_check"],
        # Only clang builds it: keep it out of `bazel build //...` with gcc.
        tags = tags + ["manual"],
    )
    corpus = "corpus/" + name
    cc_test(
        name = name + "_regression_test",
        size = "small",
        srcs = srcs + ["fuzz_regression_main.cc"],
        copts = PORTSERVER_COPTS,
        args = ["fuzz/" + corpus],
        data = native.glob([corpus + "/**"]),
        deps = deps + ["//fuzz:fuzz_check"],
        tags = tags,
        # The parsers' Windows build runs their unit tests; the replay
        # main() prints paths as char strings (wide on Windows).
        target_compatible_with = LINUX_ONLY,
    )
