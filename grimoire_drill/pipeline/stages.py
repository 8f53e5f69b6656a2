"""Each stage once, timed, remembered: the once-runner and the one ``Phase`` every writer shows.

Why one runner: a stage that failed must re-raise the same failure to every check that needs
it (a check that could not run is reported as not run, never as passed), and what a timeout
names ("during restore_postgresql") must be the phases really under way. ``Phase`` (defined in
``run_facts``, below the report, which must not import the pipeline) is the one record every
writer reads: the timeline, summary.json and the HTML report.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..errors import GrimoireDrillError
from ..run_facts import Phase

__all__ = ["Outcome", "Phase", "StageRunner"]


@dataclass
class Outcome:
    """A stage's value or the failure it raised (re-raised to every consumer)."""

    value: Any = None
    error: BaseException | None = None

    def get(self) -> Any:
        if self.error is not None:
            # a fresh traceback each time: re-raising one object would grow it with every check
            raise self.error.with_traceback(None) from None
        return self.value


class StageRunner:
    """Stages run once, the phases they took, the phases under way, and every failure seen."""

    def __init__(self) -> None:
        self.clock_start = time.perf_counter()   # the run's start on the monotonic clock phases use
        self.phases: list[Phase] = []
        self.failures: list[GrimoireDrillError] = []
        self._running: list[str] = []            # phases under way now, in the order they began
        self._stages: dict[str, Outcome] = {}
        self.lock = threading.RLock()            # stages (re-entrant: a stage may need another)
        self._records_lock = threading.Lock()    # phases and failures, appended from the engine threads

    def record(self, name: str, seconds: float, status: str, *, began: float | None = None, **detail: Any) -> None:
        """A phase that just ended after ``seconds`` (or that began at perf_counter ``began``)."""
        began = time.perf_counter() - seconds if began is None else began
        phase = Phase(name, round(seconds, 3), status, round(max(0.0, began - self.clock_start), 3), detail)
        with self._records_lock:
            self.phases.append(phase)

    def fail(self, failure: GrimoireDrillError) -> None:
        with self._records_lock:
            self.failures.append(failure)

    @contextmanager
    def running(self, phase: str) -> Iterator[None]:
        """Mark ``phase`` as under way while the block runs: what a timeout names."""
        with self._records_lock:
            self._running.append(phase)
        try:
            yield
        finally:
            with self._records_lock:
                self._running.remove(phase)

    def under_way(self) -> list[str]:
        """The phases running now, each once. No lock: a signal handler on the main thread calls it."""
        return list(dict.fromkeys(tuple(self._running)))  # one copy, atomic under the GIL

    def run(self, name: str, compute: Callable[[], Any], phase: str | None = None) -> Any:
        """Run ``compute`` once; remember its value or its failure; time it as ``phase``."""
        with self.lock:
            if name not in self._stages:
                started = time.perf_counter()
                outcome = Outcome()
                try:
                    with self.running(phase) if phase is not None else nullcontext():
                        outcome.value = compute()
                except GrimoireDrillError as failure:
                    outcome.error = failure
                    self.fail(failure)
                if phase is not None:
                    self.record(phase, time.perf_counter() - started, "failed" if outcome.error else "ok")
                self._stages[name] = outcome
            return self._stages[name].get()

    def has(self, name: str) -> bool:
        """True once a stage ran (whatever its outcome): summaries read only what was done."""
        return name in self._stages

    def outcome(self, name: str) -> Outcome | None:
        """A stage's outcome without running it (None: it never ran). No lock: engine threads poll it."""
        return self._stages.get(name)

    def forget(self, name: str) -> None:
        """Run ``name`` again on its next use (a new check round re-counts)."""
        with self.lock:
            self._stages.pop(name, None)
