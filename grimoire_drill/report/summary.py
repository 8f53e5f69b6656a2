"""Turn one finished drill (its session and its check results) into the summary@2 dict.

Every number here was measured in this run; nothing is copied from an earlier one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..errors import DrillFailure, GrimoireDrillError, HarnessError

SCHEMA = "grimoire-drill/summary@2"
PHASE_ORDER = ("locate", "archive", "start", "restore_mongodb", "restore_postgresql", "checks", "report")
STATUSES = ("passed", "failed", "skipped", "error")


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


def decide_outcome(checks: list[CheckResult], failures: list[GrimoireDrillError], interrupted: bool) -> str:
    """failed: the backup is bad (any failed check or backup fault); error: we could not tell."""
    if interrupted:
        return "error"
    if any(c.status == "failed" for c in checks) or any(isinstance(f, DrillFailure) for f in failures):
        return "failed"
    if any(c.status == "error" for c in checks) or any(isinstance(f, HarnessError) for f in failures):
        return "error"
    if not any(c.status == "passed" for c in checks):
        return "error"
    return "passed"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _archive_section(session) -> dict[str, Any]:
    try:
        ref = session.located()
    except GrimoireDrillError:
        return {"path": str(session.config.backups), "name": None, "backup_id": None, "created_at": None,
                "age_hours": None, "size_bytes": None, "sha256": None}
    section: dict[str, Any] = {
        "path": str(ref.path), "name": ref.name, "backup_id": ref.backup_id, "kind": ref.kind,
        "created_at": _iso(ref.taken_at), "age_hours": round((session.now - ref.taken_at).total_seconds() / 3600, 3),
        "size_bytes": ref.size_bytes, "sha256": None,
    }
    if not session.has_stage("extract"):
        return section  # never read (or interrupted mid-read): never read it now, just to fill a report
    try:
        extracted = session.extracted()
        section["sha256"] = extracted.sha256
        section["backup_info"] = session.backup_info()
    except GrimoireDrillError:
        pass
    return section


def _add_row_rate(phases: list[dict[str, Any]], counts: dict[str, Any]) -> None:
    """Rows restored per second for the PostgreSQL restore, from the rows counted in the restored database."""
    rows = sum(n for n in (counts.get("postgresql") or {}).values() if isinstance(n, int))
    for phase in phases:
        if phase["name"] == "restore_postgresql" and phase["status"] == "ok" and rows and phase["seconds"] > 0:
            phase["detail"] = dict(phase.get("detail") or {}, rows=rows, rows_per_s=round(rows / phase["seconds"], 1))


def _engine_section(state) -> dict[str, Any]:
    if state.engine is not None:
        data = state.engine.info.as_dict()
    elif state.choice is not None:
        data = {"kind": state.choice.kind, "version": "not started", "simulated": state.choice.kind == "simulated"}
    else:
        data = {"kind": "none", "version": "not started", "simulated": False}
    if state.choice is not None:
        data["reason"] = state.choice.reason
    return data


def build_summary(session, checks: list[CheckResult], *, finished_at: datetime, checked_at: datetime,
                  interrupted: bool = False,
                  extra_phases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    outcome = decide_outcome(checks, session.failures, interrupted)
    engines = {"mongodb": _engine_section(session.mongo), "postgresql": _engine_section(session.postgres)}
    phases = [{"name": p.name, "seconds": p.seconds, "status": p.status,
               **({"started_s": p.started_s} if p.started_s is not None else {}),
               **({"detail": p.detail} if p.detail else {})}
              for p in session.phases] + list(extra_phases or [])
    phases.sort(key=lambda phase: PHASE_ORDER.index(phase["name"]))  # stable: pipeline order, as recorded
    totals = {status: sum(1 for c in checks if c.status == status) for status in STATUSES}
    counts: dict[str, Any] = {"mongodb": {}, "postgresql": {}, "uploads_files": 0}
    source: dict[str, Any] = {}
    if session.has_stage("restored_counts"):
        try:
            counts = session.restored_counts()
        except GrimoireDrillError:
            pass
    if session.has_stage("extract"):
        source = session.source_counts_or_none()
    _add_row_rate(phases, counts)
    summary: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "grimoire-drill", "version": __version__},
        "run_id": session.run_id,
        "outcome": outcome,
        "simulated": any(e.get("simulated") for e in engines.values()),
        "started_at": _iso(session.started_at),
        "finished_at": _iso(finished_at),
        "archive": _archive_section(session),
        "engines": engines,
        "phases": phases,
        "rto_seconds": round((checked_at - session.started_at).total_seconds(), 3),
        "counts": counts,
        "source_counts": source,
        "checks": [c.as_dict() for c in checks],
        "totals": totals,
    }
    problems = [f.line() for f in session.failures]
    if problems:
        summary["error"] = problems[0]
        summary["problems"] = problems
    if interrupted:
        summary["error"] = "interrupted" if session.timed_out is None else session.timed_out
    return summary
