"""Every check with its message and its evidence (bounded, secrets masked by key and by content)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import _kv_table, _text, _token, _totals_line
from grimoire_drill.report.html.redaction import _mask_secret_keys


MAX_EVIDENCE_ROWS = 50
MAX_EVIDENCE_DEPTH = 3


def checks_table(summary: Mapping[str, Any]) -> str:
    """Every check in run order: status, id, what it means, and the evidence behind it."""
    checks = summary.get("checks") or []
    if not checks:
        return '<section class="gd gd-checks"><h2>Checks</h2><p class="gd-muted">No check ran.</p></section>'
    rows = []
    for check in checks:
        status = str(check.get("status", ""))
        evidence = check.get("evidence")
        if evidence:
            opened = " open" if status in ("failed", "error") else ""
            evidence_html = f"<details{opened}><summary>evidence</summary>{_evidence(evidence)}</details>"
        else:
            evidence_html = '<span class="gd-muted">\u2014</span>'
        rows.append(
            f'<tr class="gd-check gd-check--{_token(status)}">'
            f'<td><span class="gd-badge gd-badge--{_token(status)}">{_text(status.upper())}</span></td>'
            f"<td><code>{_text(check.get('id'))}</code></td><td>{_text(check.get('message'))}</td>"
            f"<td>{evidence_html}</td></tr>"
        )
    return (
        f'<section class="gd gd-checks"><h2>Checks</h2><p>{_totals_line(summary.get("totals") or {})}</p>'
        '<table class="gd-table"><thead><tr><th>Status</th><th>Check</th><th>Message</th><th>Evidence</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _evidence(value: Any) -> str:
    """Evidence as nested small tables where that reads well, JSON in <pre> where it does not."""
    return _evidence_html(_mask_secret_keys(value), 0)


def _evidence_html(value: Any, depth: int) -> str:
    if depth >= MAX_EVIDENCE_DEPTH:
        return _pre_json(value)
    if isinstance(value, Mapping):
        if not value:
            return '<span class="gd-muted">(empty)</span>'
        rows = [(_text(key), _evidence_html(item, depth + 1)) for key, item in value.items()]
        return _kv_table(rows, escape_keys=False)
    if isinstance(value, list):
        if not value:
            return '<span class="gd-muted">(none)</span>'
        shown, rest = value[:MAX_EVIDENCE_ROWS], len(value) - MAX_EVIDENCE_ROWS
        more = f'<p class="gd-muted">\u2026 and {rest:,} more</p>' if rest > 0 else ""
        if all(isinstance(item, Mapping) for item in shown):
            columns = list(dict.fromkeys(key for item in shown for key in item))
            head = "".join(f"<th>{_text(column)}</th>" for column in columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{_evidence_html(item.get(column), depth + 2)}</td>" for column in columns) + "</tr>"
                for item in shown
            )
            return f'<table class="gd-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}'
        if all(not isinstance(item, (Mapping, list)) for item in shown):
            return ", ".join(_scalar(item) for item in shown) + more
        return _pre_json(value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    return _text(value)


def _pre_json(value: Any) -> str:
    return f"<pre>{_text(json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False))}</pre>"
