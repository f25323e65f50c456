"""Helpers for //packaging:deb."""

# Debian's name of the one architecture the package is built for (Bazel's
# k8). build_deb.sh refuses to build on another.
DEB_ARCH = "amd64"

def deb_files(files):
    """DEST=$(location SRC) arguments of build_deb.sh for a {dest: src} dict."""
    return ["%s=$(location %s)" % (dest, src) for dest, src in files.items()]
