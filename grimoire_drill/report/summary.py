"""Turn one finished drill (its ``RunFacts`` and its check results) into the summary@2 dict.

Every number here was measured in this run; nothing is copied from an earlier one. Plain
values in, a plain dict out: a summary can be rebuilt without a session or an engine.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

from .. import __version__
from ..run_facts import Problem, RunFacts

SCHEMA = "grimoire-drill/summary@2"
PHASE_ORDER = ("locate", "archive", "start", "restore_mongodb", "restore_postgresql", "checks", "report")
STATUSES = ("passed", "failed", "skipped", "error", "off")


@dataclass
class CheckResult:
    """One drill check as the report shows it."""

    id: str
    status: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message, "evidence": self.evidence}


def decide_outcome(checks: list[CheckResult], problems: Sequence[Problem], interrupted: bool) -> str:
    """failed: the backup is bad (any failed check or backup fault); error: we could not tell."""
    if interrupted:
        return "error"
    if any(c.status == "failed" for c in checks) or any(p.kind == "backup" for p in problems):
        return "failed"
    if any(c.status == "error" for c in checks) or any(p.kind == "harness" for p in problems):
        return "error"
    if not any(c.status == "passed" for c in checks):
        return "error"
    return "passed"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _add_row_rate(phases: list[dict[str, Any]], counts: dict[str, Any]) -> None:
    """Rows restored per second for the PostgreSQL restore, from the rows counted in the restored database."""
    rows = sum(n for n in (counts.get("postgresql") or {}).values() if isinstance(n, int))
    for phase in phases:
        if phase["name"] == "restore_postgresql" and phase["status"] == "ok" and rows and phase["seconds"] > 0:
            phase["detail"] = dict(phase.get("detail") or {}, rows=rows, rows_per_s=round(rows / phase["seconds"], 1))


def build_summary(facts: RunFacts, checks: list[CheckResult], *, finished_at: datetime,
                  interrupted: bool = False) -> dict[str, Any]:
    """The summary@2 dict of one run: a pure function of its facts and its check results."""
    outcome = decide_outcome(checks, facts.problems, interrupted)
    engines = copy.deepcopy({name: dict(engine) for name, engine in facts.engines.items()})
    phases = [phase.as_dict() for phase in facts.phases]
    phases.sort(key=lambda phase: PHASE_ORDER.index(phase["name"]))  # stable: pipeline order, as recorded
    totals = {status: sum(1 for c in checks if c.status == status) for status in STATUSES}
    counts = copy.deepcopy(dict(facts.counts))
    _add_row_rate(phases, counts)
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "grimoire-drill", "version": __version__},
        "run_id": facts.run_id,
        "outcome": outcome,
        "simulated": any(e.get("simulated") for e in engines.values()),
        "started_at": _iso(facts.started_at),
        "finished_at": _iso(finished_at),
        "archive": copy.deepcopy(dict(facts.archive)),
        "engines": engines,
        "phases": phases,
        "rto_seconds": round((facts.checked_at - facts.started_at).total_seconds(), 3),
        "counts": counts,
        "source_counts": copy.deepcopy(dict(facts.source_counts)),
        "checks": [c.as_dict() for c in checks],
        "totals": totals,
    }
    if facts.generation is not None:        # what the next drill compares with (history.jsonl carries it)
        summary["generation"] = copy.deepcopy(dict(facts.generation))
    if facts.previous_generation is not None:
        summary["previous_generation"] = copy.deepcopy(dict(facts.previous_generation))
    problems = [p.line for p in facts.problems]
    if problems:
        summary["error"] = problems[0]
        summary["problems"] = problems
    if interrupted:
        summary["error"] = "interrupted" if facts.timed_out is None else facts.timed_out
    return summary
