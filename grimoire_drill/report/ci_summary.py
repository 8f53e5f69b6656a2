"""A short Markdown summary for CI job pages (GitHub's ``$GITHUB_STEP_SUMMARY``).

Pure: the summary dict in, Markdown out. GitHub renders HTML inside that Markdown, and check
messages quote names from the backup, so every value is escaped: a collection called
``<img src=x>`` or ``**PASSED**`` shows as text, never as markup.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from .facts import is_simulated
from .scope import scope_line, verdict_label

FAILED_SHOWN = 20
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_markdown(text: Any) -> str:
    """One line of plain text: HTML entities for ``<>&``, a backslash before Markdown's punctuation."""
    line = " ".join(str(text).split())
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", line)


def step_summary(summary: Mapping[str, Any], report_dir: Path | None = None) -> str:
    """Verdict and backup as a heading, then RTO, scope, SIMULATED, the failed checks, the report path."""
    archive = summary.get("archive") or {}
    backup = archive.get("name") or archive.get("backup_id") or "no backup identified"
    totals = summary.get("totals") or {}
    icon = {"passed": "\u2705", "failed": "\u274c"}.get(str(summary.get("outcome")), "\u26a0\ufe0f")
    lines = [f"### {icon} grimoire-drill {escape_markdown(verdict_label(summary))} \u2014 {escape_markdown(backup)}", ""]
    rto = summary.get("rto_seconds")
    facts = [f"{totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed, "
             f"{totals.get('error', 0)} error, {totals.get('skipped', 0)} skipped"
             + (f", {totals['off']} off" if totals.get("off") else "")]
    if isinstance(rto, (int, float)):
        facts.append(f"RTO {rto:.1f} s")
    if isinstance(archive.get("age_hours"), (int, float)):
        facts.append(f"backup {archive['age_hours']:.1f} h old")
    lines.append(escape_markdown(" \u00b7 ".join(facts)))
    for note in (scope_line(summary),
                 "SIMULATED: not audit evidence" if is_simulated(summary) else "",
                 f"cause: {summary['error']}" if summary.get("error") and summary.get("outcome") != "passed" else ""):
        if note:
            lines += ["", f"**{escape_markdown(note)}**"]
    bad = [check for check in summary.get("checks") or [] if check.get("status") in ("failed", "error")]
    if bad:
        lines += ["", "| check | status | message |", "|---|---|---|"]
        lines += [f"| {escape_markdown(check.get('id'))} | {escape_markdown(check.get('status'))} "
                  f"| {escape_markdown(check.get('message'))} |" for check in bad[:FAILED_SHOWN]]
        if len(bad) > FAILED_SHOWN:
            lines.append(f"| \u2026 | | {len(bad) - FAILED_SHOWN} more in the report |")
    if report_dir is not None:
        lines += ["", f"Report: {escape_markdown(report_dir / 'report.html')}"]
    return "\n".join(lines) + "\n\n"
