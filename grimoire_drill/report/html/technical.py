"""What pytest-html's own parts become in report.html: the tab title, its table, its environment.

pytest-html lays out a page for test suites: a generic title, an Environment box, a summary, a
results table. A drill report must lead with the answer, so through pytest-html's hooks the
plugin gives it our title (the verdict and the backup), empties its Environment box (folded
here, at the end), and makes its table the "technical details": pytest's record of each check
with its logs and tracebacks, after the report proper. Pure functions of plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from grimoire_drill.report.html.common import _duration, _text
from grimoire_drill.report.scope import verdict_label

# pytest-html's own header and its empty Environment box step aside; its run count (in its own
# unit style) gives way to the phase times above. Its summary and table stay, under our heading.
PYTEST_HTML_CSS = (
    "<style>"
    "#title{font-size:22px;margin:0 0 .2em 0}"
    "#title + p{font-size:12px;color:#656d76;margin:0 0 1em 0}"
    "#environment-header,#environment,.summary__data > h2,.summary .run-count{display:none}"
    ".gd-technical{margin-top:2.5em;border-top:2px solid #d0d7de;padding-top:.5em}"
    "</style>"
)


def page_title(summary: Mapping[str, Any]) -> str:
    """'FAILED — backup 20261124_020000 — Le Grimoire restore drill': the answer in the tab and the heading."""
    archive = summary.get("archive") or {}
    backup = archive.get("backup_id") or archive.get("name") or "no backup identified"
    return f"{verdict_label(summary)} \u2014 backup {backup} \u2014 Le Grimoire restore drill"


def duration_text(seconds: float) -> str:
    """A check's duration in pytest-html's table, in the report's one unit style (0.42 s, 2 min 03.0 s)."""
    return _duration(seconds)


def results_header(cells: list[str]) -> None:
    """pytest-html's columns, said as what they are for a drill: the check id beside pytest's node id."""
    cells[1:2] = ['<th>Check</th>', '<th class="sortable" data-column-type="testId">pytest node</th>']


def results_row(cells: list[str], check_id: str | None, node_id: str) -> None:
    """The row of one check: its stable id, and the node id escaped (a parameter id may quote the backup)."""
    cells[1:2] = [f'<td class="col-check">{_text(check_id)}</td>',
                  f'<td class="col-testId">{escape(node_id, quote=True)}</td>']


def technical_details(environment: Mapping[str, Any]) -> str:
    """The heading of what follows (pytest-html's table), with pytest's environment folded inside."""
    rows = "".join(f"<tr><th>{_text(key)}</th><td>{_text(_flat(value))}</td></tr>"
                   for key, value in environment.items())
    folded = (f'<details><summary>pytest environment ({len(environment)} entries)</summary>'
              f'<table class="gd-kv">{rows}</table></details>' if environment else "")
    return (
        '<section class="gd gd-technical" id="technical-details"><h2>Technical details</h2>'
        "<p>pytest's own record of each check follows: its node id, duration, and log or traceback "
        "(click a row). The report above is the drill's answer; this is for whoever debugs the harness.</p>"
        f"{folded}</section>"
    )


def _flat(value: Any) -> str:
    """pytest-metadata's nested values (Packages, Plugins) as one line: 'pytest 9.2.0, pluggy 1.6.0'."""
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_flat(inner)}" for key, inner in value.items())
    return str(value)
