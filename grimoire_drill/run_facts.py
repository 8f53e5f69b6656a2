"""What one finished run hands the report: plain, frozen values, no session and no engine.

Why a module of its own: the pipeline makes these and the report reads them, and neither may
import the other's machinery (``report`` never imports the pipeline), so the one ``Phase``
type and ``RunFacts`` sit below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from .errors import DrillFailure, GrimoireDrillError, HarnessError


@dataclass(frozen=True)
class Phase:
    """One timed step of the run: what the timeline, summary.json and the report show."""

    name: str
    seconds: float
    status: str                        # ok | failed | skipped
    started_s: float | None = None     # since the run began: phases overlap (engines start while the archive is read)
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def timed(cls, name: str, *, began: float, ended: float, clock_start: float, status: str,
              detail: Mapping[str, Any] | None = None) -> Phase:
        """A phase from two perf_counter readings, rounded as every output shows it."""
        return cls(name, round(max(0.0, ended - began), 3), status, round(max(0.0, began - clock_start), 3),
                   dict(detail or {}))

    def as_dict(self) -> dict[str, Any]:
        """The summary@2 shape: ``started_s`` and ``detail`` only when known."""
        data: dict[str, Any] = {"name": self.name, "seconds": self.seconds, "status": self.status}
        if self.started_s is not None:
            data["started_s"] = self.started_s
        if self.detail:
            data["detail"] = dict(self.detail)
        return data


@dataclass(frozen=True)
class Problem:
    """A failure a stage raised: its one line, and whether it says the backup is bad or we could not test."""

    line: str
    kind: str   # backup (DrillFailure, exit 1) | harness (HarnessError, exit 2) | other

    @classmethod
    def of(cls, error: GrimoireDrillError) -> Problem:
        kind = "backup" if isinstance(error, DrillFailure) else "harness" if isinstance(error, HarnessError) else "other"
        return cls(error.line(), kind)


@dataclass(frozen=True)
class RunFacts:
    """Everything the summary says about the run besides its checks, measured in this run."""

    run_id: str
    started_at: datetime
    checked_at: datetime                       # when the last check ran: the RTO's end
    archive: Mapping[str, Any]                 # summary@2 ``archive`` section
    engines: Mapping[str, Mapping[str, Any]]   # summary@2 ``engines``: mongodb, postgresql
    phases: tuple[Phase, ...] = ()
    counts: Mapping[str, Any] = field(default_factory=lambda: {"mongodb": {}, "postgresql": {}, "uploads_files": 0})
    source_counts: Mapping[str, Any] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    timed_out: str | None = None               # the deadline's message once it fired
    generation: Mapping[str, Any] | None = None            # this backup as the next drill compares it (generations.Generation.as_record)
    previous_generation: Mapping[str, Any] | None = None   # the one before, as read (pipeline.previous.PreviousGeneration.as_dict)
