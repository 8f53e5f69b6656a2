"""``python -m grimoire_drill`` and the ``grimoire-drill`` command: the signals first, then the CLI.

Why here: a Ctrl-C or SIGTERM that lands while the CLI's modules are still being imported must
end as every other interrupt does (one line, exit 130), not as a traceback or a death by signal.
Nothing has been started yet at that point, so there is nothing to clean up.
"""

import os
import signal
import sys

EXIT_INTERRUPTED = 130  # exit_codes.EXIT_INTERRUPTED, not imported: this runs before any import can be cut short


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)  # the CLI installs its own once imported
    try:
        from grimoire_drill.cli import console_main
    except KeyboardInterrupt:
        sys.stderr.write("grimoire-drill: interrupted; cleaned up\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    console_main()


if __name__ == "__main__":
    main()
