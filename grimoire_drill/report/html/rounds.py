"""Pre-migration rounds: counts before and after the --then command, and what the command did."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import _count, _text
from grimoire_drill.report.html.counts import _change, _marker
from grimoire_drill.report.html.timeline import _flatten


def rounds_table(summary: Mapping[str, Any]) -> str:
    """Pre-migration: counts and alembic version before and after ``--then``, side by side."""
    rounds = summary.get("rounds") or []
    then = summary.get("then")
    if not rounds and not then:
        return ""
    parts = ['<section class="gd gd-rounds"><h2>Before and after the migration</h2>']
    if rounds:
        labels = [str(r.get("label", f"round {i + 1}")) for i, r in enumerate(rounds)]
        flattened = [_flatten(r.get("counts") or {}) for r in rounds]
        keys = sorted(set().union(*flattened))
        rows = [("alembic_version", [r.get("alembic_version") for r in rounds])]
        rows += [(key, [flat.get(key) for flat in flattened]) for key in keys]
        body = []
        for key, values in rows:
            changed = len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1
            cells = "".join(
                f'<td class="gd-num{" gd-diff" if changed and i > 0 and v != values[0] else ""}">{_count(v)}</td>'
                for i, v in enumerate(values)
            )
            marker = _marker(changed, _change(values) if changed else "")
            body.append(f'<tr class="{"gd-row--diff" if changed else ""}"><th>{_text(key)}</th>{cells}<td>{marker}</td></tr>')
        head = "".join(f"<th>{_text(label)}</th>" for label in labels)
        parts.append(
            f'<table class="gd-table"><thead><tr><th></th>{head}<th>Change</th></tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    if summary.get("changes"):
        from grimoire_drill.report.html_run import schema_changes

        parts.append(schema_changes(summary["changes"]))
    if then:
        code = then.get("exit_code")
        status = "passed" if code == 0 and not then.get("timed_out") else "failed"
        ended = (_text(then["skipped"]) if then.get("skipped") else
                 f'was ended after --then-timeout {_text(then.get("timeout_s"))}s (its whole process group)'
                 if then.get("timed_out") else "exited with")
        parts.append(
            f"<h3>Migration command</h3><p><code>{_text(then.get('command'))}</code> {ended} "
            f'<span class="gd-badge gd-badge--{status}">{_text(code)}</span></p>'
        )
        if then.get("output_tail"):
            parts.append(f"<pre>{_text(then['output_tail'])}</pre>")
    parts.append("</section>")
    return "".join(parts)
