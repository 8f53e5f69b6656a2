"""Load a dump into a started engine, timed, and say exactly what went wrong."""
