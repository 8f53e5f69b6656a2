"""Growth since the previous generation: each count's previous value, its value now, and the delta.

Why in the report as well as in the checks: a check fails only past ``max_drop_percent``; a reader
planning disk space or spotting a slow leak wants every count's movement, falls under the limit
included. The pairs come from ``grimoire_drill.generations`` (the same comparison the checks make),
read from ``summary.json`` alone: ``previous_generation`` against ``generation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.generations import all_changes, from_record, percent_text
from grimoire_drill.report.html.common import _count, _number, _text

MAX_ROWS = 200  # a backup of 10,000 collections still gives a readable page; the rest are counted


def growth_table(summary: Mapping[str, Any]) -> str:
    """Every count both generations know, previous → now, the delta; a fall past the limit is marked."""
    previous_section = summary.get("previous_generation")
    current_section = summary.get("generation")
    if not isinstance(previous_section, Mapping) or not isinstance(current_section, Mapping):
        return ""
    heading = "<h2>Since the previous generation</h2>"
    if previous_section.get("found") is not True:
        return (f'<section class="gd gd-growth">{heading}<p class="gd-muted">'
                f"{_text(previous_section.get('reason'))}</p></section>")
    archive = summary.get("archive") or {}
    previous = from_record(previous_section, backup_id=str(previous_section.get("backup_id", "")),
                           name=str(previous_section.get("name", "")), source=str(previous_section.get("source", "")))
    current = from_record(current_section, backup_id=str(archive.get("backup_id") or ""),
                          name=str(archive.get("name") or ""), source="this drill")
    limit = _number(((summary.get("thresholds") or {}).get("max_drop_percent") or {}).get("value"))
    changes = all_changes(previous, current)
    rows = []
    for change in changes[:MAX_ROWS]:
        fell = limit is not None and change.fell_past(limit)
        percent = "\u2014" if change.percent is None else percent_text(change.percent)
        rows.append(
            f'<tr class="{"gd-row--diff" if fell else ""}"><td>{_text(change.kind)}</td>'
            f"<td><code>{_text(change.what)}</code></td><td>{_text(change.unit)}</td>"
            f'<td class="gd-num">{_count(change.previous)}</td><td class="gd-num">{_count(change.current)}</td>'
            f'<td class="gd-num{" gd-diff" if fell else ""}">{change.delta:+,}</td>'
            f'<td class="gd-num{" gd-diff" if fell else ""}">{_text(percent)}</td></tr>')
    more = (f'<p class="gd-muted">{len(changes) - MAX_ROWS:,} more counts are in summary.json.</p>'
            if len(changes) > MAX_ROWS else "")
    source = "its drill in history.jsonl" if previous.source == "history" else "its tar headers (sizes in bytes)"
    intro = (f"<p>Compared with <code>{_text(previous.name)}</code>, from {_text(source)}"
             + (f"; a fall of more than {limit:g} % fails" if limit is not None else "; max_drop_percent is off")
             + ".</p>")
    body = (intro + '<table class="gd-table gd-growth-table"><thead><tr><th>What</th><th>Name</th><th>Unit</th>'
            "<th>Previous</th><th>Now</th><th>Delta</th><th>Change</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{more}") if rows else (
        intro + '<p class="gd-muted">No count is known to both generations.</p>')
    return f'<section class="gd gd-growth">{heading}{body}</section>'
