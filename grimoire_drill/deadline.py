"""One deadline for the whole run (``--timeout``, else ``limits.run_timeout_s``).

Why a signal raising a KeyboardInterrupt: when the deadline passes, the main thread may be
waiting on restore threads, inside pytest, or in a check's query. An exception raised there
takes the way out Ctrl-C and SIGTERM already take (tools cancelled, engines stopped, temp dir
removed, every output written with outcome ``error``), so a timeout needs no cleanup of its own;
only its exit code (2, the harness could not finish) and its message (the phase) differ.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import Callable

from .errors import HarnessError


class RunTimedOut(KeyboardInterrupt):
    """The run's deadline passed: unwinds like Ctrl-C, ends as exit 2 with ``message``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds (``--timeout``)."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{text!r} is not a positive number of seconds")
    return value


def timeout_message(seconds: float, phase: str) -> str:
    return HarnessError(f"the drill timed out after {seconds:g} s during {phase}",
                        fix="raise --timeout or limits.run_timeout_s").line()


class RunDeadline:
    """SIGALRM ``seconds`` after the run began; ``phase()`` says what was running when it fired.

    Only the main thread can take a signal handler (a drill run from another thread gets none,
    ``arm`` says so by returning False). ``disarm`` before cleaning up: a deadline firing during
    cleanup would cut the cleanup short.
    """

    def __init__(self, seconds: float, phase: Callable[[], str]):
        self.seconds = seconds
        self._phase = phase
        self._previous = None
        self._armed = False
        self.message: str | None = None    # set once it fired

    def arm(self, elapsed: float = 0.0) -> bool:
        """Start the countdown, ``elapsed`` seconds of the run having passed already (none left: raise now)."""
        if self._armed or threading.current_thread() is not threading.main_thread():
            return self._armed
        if elapsed >= self.seconds:
            self.message = timeout_message(self.seconds, self._phase())
            raise RunTimedOut(self.message)
        self._previous = signal.signal(signal.SIGALRM, self._fire)
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds - elapsed)
        return True

    def disarm(self) -> None:
        if not self._armed:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._armed = False
        signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)

    def _fire(self, signum, frame) -> None:
        if not self._armed or self.message is not None:
            return
        self.message = timeout_message(self.seconds, self._phase())
        raise RunTimedOut(self.message)
