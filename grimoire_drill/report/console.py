"""The verdict as a few console lines: what ``grimoire-drill run`` prints and ``pytest drills/`` ends with.

One function for both, so a partial or simulated run reads the same whichever way it was run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..text import clip
from .facts import simulated_databases, is_simulated
from .scope import off_line, scope_line, verdict_label

NOT_CHECKED = "not checked: "  # a check that could not run for a stage's failure says that failure after this


def verdict_lines(summary: dict[str, Any], report_dir: Path | None) -> list[str]:
    """Verdict with scope, SIMULATED, the failed checks (same causes folded), the cause, the report."""
    totals = summary["totals"]
    archive = summary["archive"]
    rto = summary.get("rto_seconds")
    lines = [f"{verdict_label(summary)}: {archive.get('name') or archive.get('path')} — {totals['passed']} passed, "
             f"{totals['failed']} failed, {totals['error']} error, {totals['skipped']} skipped"
             + (f", {totals['off']} off" if totals.get("off") else "")
             + (f"; restore+checks {rto:.1f}s" if isinstance(rto, (int, float)) else "")]
    partial = scope_line(summary)
    if partial:
        lines.append(partial)
    off = off_line(summary)
    if off:
        lines.append(off)
    if is_simulated(summary):
        databases = ", ".join(simulated_databases(summary)) or "an engine"
        lines.append(f"SIMULATED: {databases} ran on the simulated engine — not audit evidence")
    lines += _failure_lines(summary)
    if report_dir is not None:
        lines.append(f"report: {report_dir / 'report.html'}")
    return lines


def _failure_lines(summary: dict[str, Any]) -> list[str]:
    """Each cause once: the first check it failed, then how many more it failed; the run's error if not said yet.

    A missing archive fails every check with one cause (``archive.found`` says it, the checks
    that needed a restore say "not checked: " and the same words): it is printed once, not once
    per check and again as the run's cause.
    """
    causes: dict[str, list[dict[str, Any]]] = {}
    for check in summary["checks"]:
        if check["status"] in ("failed", "error"):
            causes.setdefault(check["message"].removeprefix(NOT_CHECKED), []).append(check)
    lines = []
    for first, *more in causes.values():
        lines.append(f"  {first['status'].upper()} {first['id']}: {first['message']}")
        if more:
            lines.append(f"  … and {len(more)} more check(s) with the same cause")
    error = summary.get("error")
    if error and summary["outcome"] != "passed" and error.removeprefix(NOT_CHECKED) not in causes:
        lines.append(f"  cause: {clip(error, 600)}")
    return lines
