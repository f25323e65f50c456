#!/usr/bin/env bash
# Runs domain_purity_check.py on the domain's sources and its Bazel deps.
exec /usr/bin/python3 "$(dirname "$0")/domain_purity_check.py" "$@"
