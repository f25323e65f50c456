"""The one place that holds portserver's version.

Read by //app:version (the C++ constant behind `portserver --version`, the
start-up log line and the statistics) and by packaging (the .deb's file name
and control file). Bump it here only.
"""

PORTSERVER_VERSION = "0.4.2"
