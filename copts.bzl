"""Compiler options every portserver C++ target carries.

They are attached to the targets, not set in .bazelrc, so that a workspace
that uses portserver through local_repository builds it without any flags of
its own (Bazel 4.2.3's default toolchain asks for -std=c++0x).
"""

PORTSERVER_COPTS = ["-std=c++17"]
