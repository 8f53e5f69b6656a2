"""The one lifecycle every engine has: ``with engine:`` starts it, leaving stops it, and in between
``cancel()`` ends its work from another thread.

Why one base: seven engines each had their own ``__enter__`` (some cleaned up after a failed
start, some did not), their own cancel flag and their own copy of the "not running" error.
Here a failed start always stops what it began before the error goes up (as testcontainers'
and mirakuru's executors do), so no engine can leak a container, a process or a scratch
database by forgetting it; and every engine says "not running" and "the drill is stopping"
with the same words.

What "start" and "stop" mean is each engine's own: a local engine runs a server, a docker one a
container, an external one connects (and stops by dropping what it made), the simulated one
creates an in-process store.
"""

from __future__ import annotations

import threading
from typing import ClassVar

from ..errors import HarnessError
from .base import EngineInfo, stopping_error

NOT_RUNNING_FIX = "use the engine inside its `with` block"


class EngineLifecycle:
    """Start with cleanup on failure, stop, describe (``info``), cancel: the base of every engine.

    A subclass implements ``start`` (may raise at any point: ``stop`` follows), ``stop`` (safe
    after a partial start and when called twice), ``running`` and, if it has work to end at
    once, ``_end_work``. ``title`` names it in messages ("the local PostgreSQL").
    """

    kind: ClassVar[str] = "engine"
    title: ClassVar[str] = "the engine"

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.info = EngineInfo(kind=self.kind)
        self._cancelled = threading.Event()

    # -- what each engine implements -----------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """Started and not yet stopped: the engine can be used."""
        raise NotImplementedError

    def _end_work(self) -> None:
        """Called by ``cancel()`` once the flag is set: end running tools or clients now."""

    def _where(self) -> str | None:
        """What error messages name as the place (an image), if anything."""
        return None

    # -- the shared protocol -------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cancel(self) -> None:
        """From any thread: start nothing new and end running work now; ``stop()`` still cleans up.

        Thread-safe and idempotent.
        """
        self._cancelled.set()
        self._end_work()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _require_running(self) -> None:
        """The one "not running" error, for a method used outside the ``with`` block."""
        if not self.running:
            raise HarnessError(f"{self.title} is not running", where=self._where(), fix=NOT_RUNNING_FIX)

    def _check_cancelled(self, what: str) -> None:
        """Refuse to start ``what`` once cancelled."""
        if self._cancelled.is_set():
            raise stopping_error(what, self._where())
