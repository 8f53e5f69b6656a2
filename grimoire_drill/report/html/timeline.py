"""The phases on one time line, with each phase's detail (rows/s, documents/s, bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import SEPARATOR, _duration, _human_bytes, _number, _text, _token


def phase_timeline(summary: Mapping[str, Any]) -> str:
    """Phases as a time line of CSS bars (offset = when it started), with the total restore time."""
    phases = [p for p in summary.get("phases") or [] if _number(p.get("seconds")) is not None]
    total = sum(float(p["seconds"]) for p in phases)
    rto = _number(summary.get("rto_seconds"))
    rto_text = _duration(rto) if rto is not None else "not reached"
    parts = [
        '<section class="gd gd-phases"><h2>Phases</h2>',
        f'<p class="gd-rto">Total restore time (RTO): <strong>{_text(rto_text)}</strong>'
        f' <span class="gd-muted">(phase times add up to {_text(_duration(total))}; phases can overlap)</span></p>',
    ]
    if not phases:
        parts.append('<p class="gd-muted">No phase was timed.</p></section>')
        return "".join(parts)
    rows = []
    # Bars sit where each phase began when the run recorded it (phases overlap); else one after another.
    starts = [_number(p.get("started_s")) for p in phases]
    if all(start is not None for start in starts):
        offsets = [float(start) for start in starts]  # type: ignore[arg-type]
    else:
        offsets = [sum(float(p["seconds"]) for p in phases[:i]) for i in range(len(phases))]
    span = max((offset + float(p["seconds"]) for offset, p in zip(offsets, phases)), default=0.0)
    for phase, offset in zip(phases, offsets):
        seconds = float(phase["seconds"])
        status = str(phase.get("status", ""))
        left = 100.0 * offset / span if span > 0 else 0.0
        width = 100.0 * seconds / span if span > 0 else 0.0
        bar_class = f"gd-bar gd-bar--{_token(status)}"
        title = f"{phase.get('name')}: {_duration(seconds)} ({width:.0f}% of the run)"
        rows.append(
            f"<tr><th>{_text(phase.get('name'))}</th>"
            f'<td class="gd-track-cell"><div class="gd-track">'
            f'<div class="{bar_class}" style="left:{left:.2f}%;width:{width:.2f}%" title="{_text(title)}"></div>'
            f"</div></td>"
            f'<td class="gd-num">{_text(_duration(seconds))}</td>'
            f'<td><span class="gd-badge gd-badge--{_token(status)}">{_text(status)}</span></td>'
            f"<td>{_detail(phase.get('detail') or {})}</td></tr>"
        )
    parts.append(
        '<table class="gd-timeline"><thead><tr><th>Phase</th><th>Time line</th><th>Time</th>'
        f'<th>Status</th><th>Detail</th></tr></thead><tbody>{"".join(rows)}</tbody></table></section>'
    )
    return "".join(parts)


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'mongodb': {'legrimoire.recipes': 3}} -> {'mongodb · legrimoire.recipes': 3}."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix} \u00b7 {key}" if prefix else str(key)
        if isinstance(item, Mapping):
            flat.update(_flatten(item, name))
        else:
            flat[name] = item
    return flat


def _detail(detail: Mapping[str, Any]) -> str:
    """Phase detail as a short line: bytes humanised, counts with separators, rates per second.

    A rate is ``<unit>_per_s`` (documents_per_s, rows_per_s, dump_bytes_per_s…); byte rates show as MiB/s.
    """
    items = []
    for key, value in detail.items():
        if key == "bytes" and isinstance(value, (int, float)):
            shown = _human_bytes(value)
        elif key.endswith("_per_s") and isinstance(value, (int, float)):
            what = key.removesuffix("_per_s")
            shown = f"{_human_bytes(value)}/s" if what.endswith("bytes") else f"{value:,.0f} {what.replace('_', ' ')}/s"
            key = "rate"
        elif isinstance(value, int) and not isinstance(value, bool):
            shown = f"{value:,}"
        elif isinstance(value, float):
            shown = f"{value:,.2f}"
        else:
            shown = str(value)
        items.append(f"{_text(str(key).replace('_', ' '))} {_text(shown)}")
    return SEPARATOR.join(items)
