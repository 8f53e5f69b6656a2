"""Report fragments for who ran a drill (attribution) and what a --then command changed.

Kept apart from report/html/ (the drill's own sections) and pure like it: plain values of the
summary in, an escaped ``<section>`` string out.
"""

from __future__ import annotations

from typing import Any, Mapping

from grimoire_drill.report.html.common import _kv_table, _text

CHANGE_KINDS = {"columns": "Columns", "indexes": "Indexes", "constraints": "Constraints",
                "mongodb_indexes": "MongoDB indexes"}


def attribution_table(summary: Mapping[str, Any]) -> str:
    """Host, user, command line, build and versions: who produced this evidence, with what."""
    run = summary.get("attribution")
    if not run:
        return ""
    tool = run.get("tool") or {}
    build = tool.get("build") or {}
    if build.get("source") == "git":
        built = f"git {build.get('commit')}" + (" (dirty: uncommitted changes)" if build.get("dirty") else "")
    elif build.get("source") == "distribution":
        built = f"installed {tool.get('name', 'grimoire-drill')} {build.get('version')}, RECORD sha256 {build.get('record_sha256')}"
    else:
        built = "unknown"
    rows = [("Host", _text(run.get("host"))), ("User", _text(run.get("user"))),
            ("Command line", f"<code>{_text(run.get('command_line'))}</code>"),
            ("Tool", _text(f"{tool.get('name', 'grimoire-drill')} {tool.get('version', '')}")),
            ("Build", f'<span class="gd-hash">{_text(built)}</span>'), ("Python", _text(run.get("python")))]
    rows += [(name, _text(version if version is not None else "not installed"))
             for name, version in (run.get("libraries") or {}).items()]
    for db, server in (run.get("servers") or {}).items():
        parts = [server.get("kind"), server.get("version"), server.get("image"), server.get("image_id")]
        rows.append((f"{db} server", f'<span class="gd-hash">{_text(" · ".join(str(p) for p in parts if p))}</span>'))
    return f'<section class="gd gd-attribution"><h2>Who ran it, with what</h2>{_kv_table(rows)}</section>'


def schema_changes(changes: Mapping[str, Any] | None) -> str:
    """The schema part of a --then diff: added, dropped and changed columns, indexes, constraints."""
    schema = (changes or {}).get("schema") or {}
    if not schema:
        return ""
    blocks = []
    for kind, title in CHANGE_KINDS.items():
        part = schema.get(kind) or {}
        if "not_compared" in part:
            blocks.append(f"<li>{title}: not compared ({_text(part['not_compared'])})</li>")
            continue
        lines = []
        for side, verb in (("added", "added"), ("dropped", "dropped"), ("changed", "changed")):
            listed = part.get(side) or {}
            for item in listed.get("items") or []:
                text = f"{item[0]}: {item[1]} → {item[2]}" if side == "changed" else item
                lines.append(f"<li><b>{verb}</b> <code>{_text(text)}</code></li>")
            if listed.get("more"):
                lines.append(f"<li>… and {_text(listed['more'])} more {verb}</li>")
        blocks.append(f"<li>{title}: " + (f"<ul>{''.join(lines)}</ul>" if lines else "no change") + "</li>")
    return f"<h3>Schema changes</h3><ul class=\"gd-schema-changes\">{''.join(blocks)}</ul>"
