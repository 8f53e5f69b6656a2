"""Counts side by side: in the dump, in the JSON export, restored; a difference is marked, never hidden."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import SEPARATOR, _count, _text


def counts_table(summary: Mapping[str, Any]) -> str:
    """Source (dump, JSON export) against restored, per collection and table; differences marked ≠."""
    counts = summary.get("counts") or {}
    sources = summary.get("source_counts") or {}
    mongo_restored = counts.get("mongodb") or {}
    mongo_source = sources.get("mongodb") or {}
    pg_restored = counts.get("postgresql") or {}
    pg_source = sources.get("postgresql") or {}
    rows = []
    mongo_failed = _restore_failed(summary, "restore_mongodb")
    for namespace in sorted(set(mongo_restored) | set(mongo_source)):
        source = mongo_source.get(namespace) or {}
        rows.append(_count_row("MongoDB", namespace, source.get("dump"), source.get("export"),
                               mongo_restored.get(namespace), bool(mongo_source),
                               not_restored="\u2014 (restore failed)" if mongo_failed else "missing"))
    pg_failed = _restore_failed(summary, "restore_postgresql")
    for table in sorted(set(pg_restored) | set(pg_source)):
        rows.append(_count_row("PostgreSQL", table, pg_source.get(table), None, pg_restored.get(table), bool(pg_source),
                               not_restored="\u2014 (restore failed)" if pg_failed else "missing"))
    if counts.get("uploads_files") is not None:
        rows.append(_count_row("uploads", "regular files", None, None, counts["uploads_files"], False))
    differing = sum(1 for row in rows if "gd-row--diff" in row)
    if not rows:
        body = '<p class="gd-muted">Nothing was counted.</p>'
    else:
        note = (f'<p><span class="gd-marker gd-marker--diff">\u2260</span> {differing} '
                f'{"count differs" if differing == 1 else "counts differ"} from the source.</p>'
                if differing else "")
        objects = sources.get("postgresql_objects")
        if isinstance(objects, Mapping) and objects:
            kinds = sorted(objects.items(), key=lambda item: (-item[1] if isinstance(item[1], int) else 0, str(item[0])))
            note += ('<p class="gd-toc">PostgreSQL dump, its table of contents: '
                     + SEPARATOR.join(f"{_count(n)} {_text(str(kind).lower())}" for kind, n in kinds)
                     + "; rows per table below.</p>")
        if sources.get("postgresql_from"):
            note += (f'<p class="gd-muted">PostgreSQL "in dump" counts come from <code>{_text(sources["postgresql_from"])}'
                     "</code>: the restored dump could not be read whole. \u2014 in dump: count unknown.</p>")
        body = (
            f"{note}<table class=\"gd-table gd-counts\"><thead><tr><th>Database</th><th>Collection / table</th>"
            "<th>In dump</th><th>In JSON export</th><th>Restored</th><th>Match</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return f'<section class="gd gd-counts-section"><h2>Counts</h2>{body}</section>'


def _restore_failed(summary: Mapping[str, Any], phase_name: str) -> bool:
    return any(phase.get("name") == phase_name and phase.get("status") == "failed"
               for phase in summary.get("phases") or [])


def _count_row(database: str, name: str, dump: Any, export: Any, restored: Any, compared: bool,
               not_restored: str = "missing") -> str:
    """One counts row; a cell is flagged when it disagrees with the dump (the source of truth).

    ``compared`` is False when no source counts exist for this database: nothing to disagree with.
    """
    reference = dump if dump is not None else restored
    known = [value for value in (dump, export, restored) if value is not None]
    restored_missing = compared and restored is None
    differs = compared and (len(set(known)) > 1 or restored_missing)
    cells = []
    for value in (dump, export):
        flagged = differs and value is not None and value != reference
        cells.append(f'<td class="gd-num{" gd-diff" if flagged else ""}">{_count(value)}</td>')
    if restored_missing:
        cells.append(f'<td class="gd-num gd-diff">{_text(not_restored)}</td>')
    else:
        flagged = differs and restored != reference
        cells.append(f'<td class="gd-num{" gd-diff" if flagged else ""}">{_count(restored)}</td>')
    if differs:
        marker = _marker(True, "differs from the source")
    elif compared:
        marker = _marker(False, "")
    else:
        marker = '<span class="gd-muted">\u2014</span>'
    return (
        f'<tr class="{"gd-row--diff" if differs else ""}"><td>{_text(database)}</td><td><code>{_text(name)}</code></td>'
        f"{''.join(cells)}<td>{marker}</td></tr>"
    )


def _marker(differs: bool, note: str) -> str:
    if differs:
        return f'<span class="gd-marker gd-marker--diff" title="{_text(note)}">\u2260</span> {_text(note)}'
    return '<span class="gd-marker gd-marker--same" title="same">=</span>'


def _change(values: list[Any]) -> str:
    first, last = values[0], values[-1]
    if isinstance(first, int) and isinstance(last, int) and not isinstance(first, bool):
        return f"{last - first:+,}"
    return "changed"
