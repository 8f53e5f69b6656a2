"""The trend of the last runs from history.jsonl, as an inline SVG (no script, no external asset)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from grimoire_drill.report.html.common import (OUTCOME_COLOURS, SEPARATOR, UNKNOWN_COLOUR, _duration, _number,
                                            _text, _when)


def trend_svg(history: Iterable[Mapping[str, Any]]) -> str:
    """The last runs as an inline SVG: outcome dots (hollow = simulated) and RTO as a line.

    Pass ``read_history()`` after ``append_history()`` to include the current run.
    """
    runs = list(history)
    width, height = 640, 190
    left, right, top, plot_bottom, dots_y, labels_y = 48, 16, 16, 118, 144, 174
    parts = [
        '<section class="gd gd-trend"><h2>Trend</h2>',
        f'<svg role="img" aria-label="Outcome and restore time of the last {len(runs)} runs" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>Last {len(runs)} drills: outcome and restore time</title>",
    ]
    if not runs:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="14" fill="{UNKNOWN_COLOUR}">'
            "No runs recorded yet: the trend appears as drills accumulate.</text></svg></section>"
        )
        return "".join(parts)
    slot = (width - left - right) / len(runs)
    xs = [left + slot * (index + 0.5) for index in range(len(runs))]
    rtos = [_number(run.get("rto_seconds")) for run in runs]
    peak = max((value for value in rtos if value is not None), default=0.0)
    scale = peak if peak > 0 else 1.0

    def y_of(value: float) -> float:
        return plot_bottom - (plot_bottom - top) * value / scale

    parts.append(
        f'<line x1="{left}" y1="{plot_bottom}" x2="{width - right}" y2="{plot_bottom}" stroke="#d0d7de"/>'
        f'<line x1="{left}" y1="{top}" x2="{width - right}" y2="{top}" stroke="#eaeef2" stroke-dasharray="3 3"/>'
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="#656d76">{_text(_duration(peak))}</text>'
        f'<text x="{left - 6}" y="{plot_bottom + 4}" text-anchor="end" font-size="11" fill="#656d76">0 s</text>'
        f'<text x="{left - 6}" y="{dots_y + 4}" text-anchor="end" font-size="11" fill="#656d76">result</text>'
    )
    for segment in _segments(xs, rtos):
        points = " ".join(f"{x:.1f},{y_of(value):.1f}" for x, value in segment)
        parts.append(f'<polyline points="{points}" fill="none" stroke="#0969da" stroke-width="2"/>')
    for x, run, rto in zip(xs, runs, rtos):
        outcome = str(run.get("outcome", ""))
        colour = OUTCOME_COLOURS.get(outcome, UNKNOWN_COLOUR)
        simulated = run.get("simulated") is True
        label = SEPARATOR.join(
            item for item in (
                _when(run.get("finished_at")),
                f"backup {run.get('backup_id') or '?'}",
                outcome or "unknown",
                _partial_note(run),
                f"RTO {_duration(rto)}" if rto is not None else "no RTO",
                "SIMULATED" if simulated else "",
            ) if item
        )
        if rto is not None:
            parts.append(f'<circle cx="{x:.1f}" cy="{y_of(rto):.1f}" r="3" fill="#0969da"><title>{_text(label)}</title></circle>')
        fill = "#ffffff" if simulated else colour
        dash = ' stroke-dasharray="2 2"' if simulated else ""
        parts.append(
            f'<circle cx="{x:.1f}" cy="{dots_y}" r="6" fill="{fill}" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{_text(label)}</title></circle>"
        )
    first, last = runs[0], runs[-1]
    parts.append(
        f'<text x="{xs[0]:.1f}" y="{labels_y}" text-anchor="{"middle" if len(runs) == 1 else "start"}" '
        f'font-size="11" fill="#656d76">{_text(_run_label(first))}</text>'
    )
    if len(runs) > 1:
        parts.append(
            f'<text x="{xs[-1]:.1f}" y="{labels_y}" text-anchor="end" font-size="11" fill="#656d76">'
            f"{_text(_run_label(last))}</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><span class="gd-dot" style="background:{colour}"></span>{name}</span>'
        for name, colour in OUTCOME_COLOURS.items()
    )
    legend += (
        '<span><span class="gd-dot" style="border:2px dashed #6e7781;background:#fff"></span>simulated</span>'
        '<span><span class="gd-dot" style="background:#0969da;border-radius:0;height:.25em"></span>restore time (RTO)</span>'
    )
    parts.append(f'<p class="gd-legend gd-muted">{legend}</p></section>')
    return "".join(parts)


def _segments(xs: list[float], values: list[float | None]) -> list[list[tuple[float, float]]]:
    """Split the RTO line where a run has no RTO, instead of drawing a misleading bridge."""
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for x, value in zip(xs, values):
        if value is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append((x, value))
    if current:
        segments.append(current)
    return [segment for segment in segments if len(segment) > 1]


def _partial_note(run: Mapping[str, Any]) -> str:
    """'PARTIAL 5 of 46 checks' for a history record of a narrowed run, else ''."""
    scope = run.get("scope")
    if not isinstance(scope, Mapping) or scope.get("kind") != "partial":
        return ""
    return f"PARTIAL {_number(scope.get('ran')) or 0:.0f} of {_number(scope.get('of')) or 0:.0f} checks"


def _run_label(run: Mapping[str, Any]) -> str:
    if run.get("backup_id"):
        return f"backup {run['backup_id']}"
    return _when(run.get("finished_at"))


MAX_SERIES = 60  # counts drawn; a backup of thousands of collections keeps a readable page


def count_trends(history: Iterable[Mapping[str, Any]]) -> str:
    """Each count of the generations in history.jsonl (documents per collection, rows per table,
    uploads, archive size) as a small line over the last runs: growth, and a fall, at a glance.

    Records from before generations were kept (no ``generation``) leave a gap, not a zero.
    """
    runs = [run for run in history if isinstance(run, Mapping)]
    series: dict[str, list[float | None]] = {}
    for index, run in enumerate(runs):
        for name, value in _generation_counts(run.get("generation")).items():
            if name not in series and len(series) >= MAX_SERIES:
                continue
            series.setdefault(name, [None] * len(runs))[index] = value
    if not any(sum(value is not None for value in values) > 1 for values in series.values()):
        return ""
    rows = []
    for name, values in sorted(series.items()):
        known = [value for value in values if value is not None]
        if len(known) < 2:
            continue
        rows.append(f"<tr><td><code>{_text(name)}</code></td><td>{_sparkline(values)}</td>"
                    f'<td class="gd-num">{known[0]:,.0f}</td><td class="gd-num">{known[-1]:,.0f}</td>'
                    f'<td class="gd-num">{known[-1] - known[0]:+,.0f}</td></tr>')
    return ('<section class="gd gd-count-trends"><h2>Counts over the last runs</h2>'
            '<table class="gd-table"><thead><tr><th>Count</th><th>Trend</th><th>First</th><th>Last</th>'
            f"<th>Change</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _generation_counts(section: Any) -> dict[str, float]:
    """The counts of one history record's ``generation``: plain numbers, anything else left out."""
    if not isinstance(section, Mapping):
        return {}
    counts: dict[str, float] = {}
    for kind, label in (("documents", "documents"), ("rows", "rows")):
        values = section.get(kind)
        if isinstance(values, Mapping):
            for name, value in values.items():
                number = _number(value)
                if number is not None:
                    counts[f"{label}: {name}"] = number
    for key, label in (("uploads", "upload files"), ("archive_bytes", "archive bytes")):
        number = _number(section.get(key))
        if number is not None:
            counts[label] = number
    return counts


def _sparkline(values: list[float | None]) -> str:
    width, height, pad = 160, 28, 3
    known = [value for value in values if value is not None]
    low, high = min(known), max(known)
    span = high - low or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [(pad + step * index, height - pad - (height - 2 * pad) * (value - low) / span)
              for index, value in enumerate(values) if value is not None]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="from {known[0]:,.0f} to {known[-1]:,.0f}"><polyline points="{line}" fill="none" '
            f'stroke="#0969da" stroke-width="1.5"/></svg>')
