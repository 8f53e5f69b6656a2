"""Which backup exactly, and where it was restored: the archive's identity and the engines table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import DATABASE_NAMES, SEPARATOR, _age, _human_bytes, _kv_table, _text, _when


def archive_identity(summary: Mapping[str, Any]) -> str:
    """Which backup exactly: name, id, path, size, sha256, when it was taken, its own info file."""
    archive = summary.get("archive") or {}
    size = archive.get("size_bytes")
    rows = [
        ("Name", _text(archive.get("name"))),
        ("Backup ID", _text(archive.get("backup_id"))),
        ("Path", f"<code>{_text(archive.get('path'))}</code>"),
        ("Kind", _text(archive.get("kind"))),
        ("Size", _text(f"{_human_bytes(size)} ({size:,} bytes)") if isinstance(size, int) else _text(None)),
        ("SHA-256", f'<code class="gd-hash">{_text(archive.get("sha256"))}</code>'),
        ("Taken at", _text(_when(archive.get("created_at")))),
        ("Age at drill", _text(_age(archive.get("age_hours")))),
    ]
    if "kind" not in archive:
        rows = [row for row in rows if row[0] != "Kind"]
    judged = _judged_against(summary.get("thresholds") or {})
    if judged:
        rows.append(("Judged against", _text(judged)))
    parts = ['<section class="gd gd-archive"><h2>Archive</h2>', _kv_table(rows)]
    info = archive.get("backup_info") or {}
    if info:
        parts.append("<h3>backup_info.txt</h3>")
        parts.append(_kv_table([(_text(key), _text(value)) for key, value in info.items()], escape_keys=False))
    parts.append("</section>")
    return "".join(parts)


def engines_table(summary: Mapping[str, Any]) -> str:
    """Where each database was restored: engine kind, server version, image and digest, tools."""
    engines = summary.get("engines") or {}
    head = "<tr><th>Database</th><th>Engine</th><th>Version</th><th>Image</th><th>Image ID</th><th>Tools</th><th>Note</th></tr>"
    rows = []
    for database, engine in engines.items():
        simulated = bool(engine.get("simulated"))
        kind = _text(engine.get("kind"))
        if simulated:
            kind += ' <span class="gd-badge gd-badge--simulated">SIMULATED</span>'
        tools = engine.get("tools") or {}
        tool_text = ", ".join(f"{name} {version or '?'}" for name, version in tools.items())
        rows.append(
            f'<tr class="{"gd-row--simulated" if simulated else ""}">'
            f"<td>{_text(DATABASE_NAMES.get(database, database))}</td><td>{kind}</td>"
            f"<td>{_text(engine.get('version'))}</td><td><code>{_text(engine.get('image'))}</code></td>"
            f'<td><code class="gd-hash">{_text(engine.get("image_id"))}</code></td>'
            f"<td>{_text(tool_text or None)}</td><td>{_text(engine.get('note'))}</td></tr>"
        )
    if not rows:
        body = '<p class="gd-muted">No engine was started.</p>'
    else:
        body = f'<table class="gd-table"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<section class="gd gd-engines"><h2>Engines</h2>{body}</section>'


THRESHOLD_WORDS = (("max_age_hours", "at most {:g} h old"), ("min_size_kb", "at least {:g} KB"))
SOURCE_WORDS = {"flag": "flag", "env": "environment", "file": "file", "expectations": "expectations.toml",
                "default": "default"}


def _judged_against(thresholds: Mapping[str, Any]) -> str:
    """The archive's own thresholds as a line: "at most 26 h old (expectations.toml) · at least 100 KB (flag)"."""
    shown = []
    for name, words in THRESHOLD_WORDS:
        entry = thresholds.get(name)
        if isinstance(entry, Mapping) and isinstance(entry.get("value"), (int, float)):
            source = SOURCE_WORDS.get(str(entry.get("source")), "?")
            shown.append(f"{words.format(entry['value'])} ({source})")
    return SEPARATOR.join(shown)
