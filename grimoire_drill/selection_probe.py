"""A DrillRun that only collects: which checks a run's pytest arguments select, before anything starts.

Why a DrillRun: the drill's conftest parametrises the checks from the run's expectations, and
the plugin turns node ids and --ignore into a selection; the probe goes through the very same
code, so what it counts is what the run will run. Its hooks that would start engines, claim a
report folder or write outputs do nothing.
"""

from __future__ import annotations

import pytest

from .config import DrillConfig
from .expectations import Expectations
from .plugin import DrillRun, check_id

PROBE_RUN_ID = "preflight"


class SelectionProbe(DrillRun):
    """Collects the drill (``--collect-only``); ``selected`` is the check ids left after every deselection."""

    collect_only = True

    def __init__(self, config: DrillConfig, expectations: Expectations):
        super().__init__(config, run_id=PROBE_RUN_ID)
        self.expectations = expectations
        self.selected: tuple[str, ...] | None = None  # None: collection did not finish

    @property
    def collected(self) -> int:
        """The checks of the whole drill, before -k, -m, --deselect or node ids narrowed it."""
        return self._collected

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.selected = tuple(check_id(item) for item in session.items)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.session.close()  # nothing was started: this only marks it closed

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        pass

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        pass
