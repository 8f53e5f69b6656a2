"""The verdict as a few console lines: what ``grimoire-drill run`` prints and ``pytest drills/`` ends with.

One function for both, so a partial or simulated run reads the same whichever way it was run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .facts import simulated_databases, is_simulated
from .scope import off_line, scope_line, verdict_label

SAME_CAUSE_SHOWN = 2  # a missing archive fails every check: say it twice, then count the rest


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
    shown: dict[str, int] = {}
    for check in summary["checks"]:
        if check["status"] not in ("failed", "error"):
            continue
        shown[check["message"]] = shown.get(check["message"], 0) + 1
        if shown[check["message"]] <= SAME_CAUSE_SHOWN:
            lines.append(f"  {check['status'].upper()} {check['id']}: {check['message']}")
    for message, count in shown.items():
        if count > SAME_CAUSE_SHOWN:
            lines.append(f"  … and {count - SAME_CAUSE_SHOWN} more check(s) with the same cause: {message[:120]}")
    if summary.get("error") and summary["outcome"] != "passed":
        lines.append(f"  cause: {summary['error']}")
    if report_dir is not None:
        lines.append(f"report: {report_dir / 'report.html'}")
    return lines
