"""The answer first: the verdict banner, and the SIMULATED banner no one can miss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.facts import is_simulated, simulated_databases
from grimoire_drill.report.html.common import DATABASE_NAMES, OUTCOME_SYMBOLS, SEPARATOR, _age, _text, _totals_line, _when
from grimoire_drill.report.scope import is_partial, off_line, scope_line, verdict_label


MAX_FAILURES_IN_BANNER = 5


def verdict_banner(summary: Mapping[str, Any]) -> str:
    """The answer first, in words and colour: PASSED / PARTIAL PASS (12 of 46 checks) / FAILED / ERROR,
    which backup, when. A partial pass is never green: it proves only the checks that ran."""
    outcome = str(summary.get("outcome", "error"))
    if outcome not in OUTCOME_SYMBOLS:
        outcome = "error"
    partial = is_partial(summary)
    colour = "partial" if partial and outcome == "passed" else outcome
    archive = summary.get("archive") or {}
    backup = archive.get("backup_id") or archive.get("name")
    meta = [
        f"backup <strong>{_text(backup)}</strong>" if backup else "no backup identified",
        *([f"{_text(_age(archive['age_hours']))} old"] if archive.get("age_hours") is not None else []),
        f"finished {_text(_when(summary.get('finished_at')))}",
        _totals_line(summary.get("totals") or {}),
    ]
    if is_simulated(summary):
        meta.append("<strong>SIMULATED</strong>")
    parts = [
        f'<section class="gd gd-verdict gd-verdict--{colour}" role="status" aria-label="Drill verdict">',
        f'<div class="gd-verdict__word">{OUTCOME_SYMBOLS[outcome]} {_text(verdict_label({**summary, "outcome": outcome}))}</div>',
        f'<div class="gd-verdict__meta">{SEPARATOR.join(meta)}</div>',
    ]
    if partial:
        parts.append(f'<div class="gd-verdict__scope">{_text(scope_line(summary))}</div>')
    if off_line(summary):
        parts.append(f'<div class="gd-verdict__scope gd-verdict__off">{_text(off_line(summary))}</div>')
    if summary.get("error"):
        parts.append(f'<div class="gd-verdict__error">{_text(summary["error"])}</div>')
    bad = [c for c in summary.get("checks") or [] if c.get("status") in ("failed", "error")]
    if bad:
        items = "".join(
            f"<li><code>{_text(c.get('id'))}</code>: {_text(c.get('message'))}</li>"
            for c in bad[:MAX_FAILURES_IN_BANNER]
        )
        if len(bad) > MAX_FAILURES_IN_BANNER:
            items += f"<li>\u2026 and {len(bad) - MAX_FAILURES_IN_BANNER} more below</li>"
        parts.append(f"<ul>{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def simulated_banner(summary: Mapping[str, Any]) -> str:
    """'' for a real run; otherwise a banner no one can miss, naming the simulated engine(s)."""
    if not is_simulated(summary):
        return ""
    databases = [DATABASE_NAMES.get(name, name) for name in simulated_databases(summary)]
    if databases:
        which = " and ".join(databases) + (" was" if len(databases) == 1 else " were")
        detail = f"{_text(which)} restored into an in-process simulation, not a real server."
    else:
        detail = "At least one engine was simulated, not a real server."
    return (
        '<section class="gd gd-simulated" role="alert" aria-label="Simulated run">'
        '<div class="gd-simulated__word">SIMULATED \u2014 not audit evidence</div>'
        f"<p>{detail} This run shows the backup's files are readable and consistent; it does not "
        "prove that the real database server restores them. Re-run with <code>--require-real</code> "
        "on a machine with Docker or the database binaries for audit evidence.</p>"
        "</section>"
    )
