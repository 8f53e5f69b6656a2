"""The run's facts, taken once the checks are done: what the report will say, as plain values.

Why here and not in the report: reading the session (which stage ran, which engine started)
is the pipeline's business; the report then builds every output from these values alone.
Nothing is computed anew here: a stage that never ran is reported as not done.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..archive import shown_source
from ..errors import GrimoireDrillError
from ..run_facts import Problem, RunFacts
from .prepare import DatabaseState

if TYPE_CHECKING:
    from .session import DrillSession


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def archive_section(session: DrillSession) -> dict[str, Any]:
    """summary@2 ``archive``: what was located, and its hash and backup_info once it was read."""
    try:
        ref = session.located()
    except GrimoireDrillError:
        return {"path": shown_source(session.config.backups), "name": None, "backup_id": None, "created_at": None,
                "age_hours": None, "size_bytes": None, "sha256": None}
    section: dict[str, Any] = {
        "path": ref.where, "name": ref.name, "backup_id": ref.backup_id, "kind": ref.kind,
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


def engine_section(state: DatabaseState) -> dict[str, Any]:
    """summary@2 ``engines.<database>``: the started engine's description, else what was chosen."""
    if state.engine is not None:
        data = state.engine.info.as_dict()
    elif state.choice is not None:
        data = {"kind": state.choice.kind, "version": "not started", "simulated": state.choice.kind == "simulated"}
    else:
        data = {"kind": "none", "version": "not started", "simulated": False}
    if state.choice is not None:
        data["reason"] = state.choice.reason
    return data


def collect_facts(session: DrillSession, checked_at: datetime) -> RunFacts:
    """The facts of ``session`` now; only stages that ran are read (never run one to fill a report)."""
    counts: dict[str, Any] = {"mongodb": {}, "postgresql": {}, "uploads_files": 0}
    if session.has_stage("restored_counts"):
        try:
            counts = session.restored_counts()
        except GrimoireDrillError:
            pass
    return RunFacts(
        run_id=session.run_id,
        started_at=session.started_at,
        checked_at=checked_at,
        archive=archive_section(session),
        engines={"mongodb": engine_section(session.mongo), "postgresql": engine_section(session.postgres)},
        phases=tuple(session.phases),
        counts=counts,
        source_counts=session.source_counts_or_none() if session.has_stage("extract") else {},
        problems=tuple(Problem.of(failure) for failure in session.failures),
        timed_out=session.timed_out,
        generation=_stage_value(session, "this_generation", lambda: session.this_generation().as_record()),
        previous_generation=_stage_value(session, "previous_generation",
                                         lambda: session.previous_generation().as_dict()),
    )


def _stage_value(session: DrillSession, stage: str, read):
    """A stage's value as plain data once it ran (never run one to fill a report); None otherwise."""
    if not session.has_stage(stage):
        return None
    try:
        return read()
    except GrimoireDrillError:
        return None
