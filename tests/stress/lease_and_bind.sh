#!/usr/bin/env bash
# Runs lease_and_bind.py with Debian's python, which has portpicker.
exec /usr/bin/python3 "$(dirname "$0")/lease_and_bind.py" "$@"
