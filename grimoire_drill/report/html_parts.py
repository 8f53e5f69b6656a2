"""HTML fragments of the drill report, each a self-contained string.

The same fragments serve two pages: pytest-html's report (the plugin hands them to
``pytest_html_results_summary``) and ``full_page()`` for standalone use. So each fragment is a
``<section class="gd ...">`` with its own heading, all class names are prefixed ``gd-`` so
pytest-html's stylesheet and ours do not fight, and there is no script, no external asset and
no URL reference: the page must read the same in ten years, offline, in an audit folder.

Every string that comes from the summary passes through ``redact()`` and then HTML escaping
(``_text``): a DSN pasted into a check message or a tool's output must not leak a password
into an artifact that CI keeps for months.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from html import escape
from typing import Any

from grimoire_drill.report.facts import is_simulated, simulated_databases
from grimoire_drill.report.scope import is_partial, scope_line, verdict_label

MASK = "***"
DATABASE_NAMES = {"mongodb": "MongoDB", "postgresql": "PostgreSQL"}
OUTCOME_SYMBOLS = {"passed": "\u2714", "failed": "\u2718", "error": "\u26a0", "migration_failed": "\u2718"}
OUTCOME_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#9a6700", "migration_failed": "#8250df"}
UNKNOWN_COLOUR = "#6e7781"
CHECK_STATUSES = ("passed", "failed", "skipped", "error")
MAX_EVIDENCE_ROWS = 50
MAX_EVIDENCE_DEPTH = 3
MAX_FAILURES_IN_BANNER = 5
SEPARATOR = " \u00b7 "

_SECRET_WORDS = r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|credentials?"
_SECRET_KEY = re.compile(rf"(?i)({_SECRET_WORDS})")
# Text masked here comes from the backup (names, values, tool output quoting dump content), so
# every pattern is linear: possessive runs that start only where a run starts, and the secret
# word looked for inside the key in Python. (The former one-regex forms backtracked in cubic
# time: 2,000 characters of "password" took 30 s.)
# scheme://user:password@host -> scheme://user:***@host. The password runs to the last "@"
# before the path, so an unencoded "@" inside it is masked too.
_SCHEME_RUN = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z0-9+.\-]++://")
_USERINFO = re.compile(r"[^\s:/?#@]*+:(?P<secret>[^\s/?#]*)@")
# password=... in libpq conninfo, query strings and env assignments (PGPASSWORD=...).
_KEY_EQUALS = re.compile(r"(?<![A-Za-z_])[A-Za-z_]++\s*+=\s*+")
_EQUALS_SECRET = re.compile(r"'(?:[^'\\]|\\.)*+'|\"(?:[^\"\\]|\\.)*+\"|[^\s&]++")
# "password": "..." in JSON-ish text, "Password: ..." in tool output.
_KEY_COLON = re.compile(r"(?<![A-Za-z_])[\"']?+[A-Za-z_]++[\"']?+\s*+:\s*+")
_COLON_SECRET = re.compile(r"\"(?:[^\"\\]|\\.)*+\"|'(?:[^'\\]|\\.)*+'|(?!//)[^\s,;}\]]++")

_CSS = """
.gd{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px;
 color:#1f2328;line-height:1.45;margin:0 0 1.2em 0;max-width:100%;box-sizing:border-box}
.gd *{box-sizing:border-box}
.gd h2{font-size:18px;color:#1f2328;margin:.2em 0 .5em 0;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.gd h3{font-size:15px;color:#1f2328;margin:.8em 0 .3em 0}
.gd p{color:#1f2328;margin:.3em 0}
.gd code,.gd pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.gd pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.5em;max-height:24em;overflow:auto;
 white-space:pre-wrap;word-break:break-word;margin:.3em 0}
.gd table{border-collapse:collapse;margin:.3em 0}
.gd th,.gd td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
.gd thead th{background:#f6f8fa}
.gd .gd-kv th{background:#f6f8fa;font-weight:600;white-space:nowrap}
.gd .gd-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.gd .gd-hash{word-break:break-all}
.gd .gd-muted{color:#656d76}
.gd-verdict{border-radius:8px;padding:18px 24px;color:#fff}
.gd-verdict p{color:#fff}
.gd-verdict--passed{background:#1a7f37}
.gd-verdict--failed{background:#cf222e}
.gd-verdict--error{background:#9a6700}
.gd-verdict--migration_failed{background:#8250df}
.gd-verdict--partial{background:#0550ae}
.gd-verdict__scope{font-size:17px;margin-top:.4em;font-weight:700}
.gd-verdict__word{font-size:56px;font-weight:800;letter-spacing:.06em;line-height:1.1}
.gd-verdict__meta{font-size:16px;margin-top:.3em}
.gd-verdict__error{font-size:15px;margin-top:.5em;font-weight:600}
.gd-verdict ul{margin:.5em 0 0 1.2em;padding:0}
.gd-verdict code{color:#fff}
.gd-simulated{border:4px solid #bf3989;border-radius:8px;padding:14px 20px;color:#1f2328;
 background:repeating-linear-gradient(135deg,#fff0f7 0 14px,#ffd8eb 14px 28px)}
.gd-simulated__word{font-size:28px;font-weight:800;color:#99286e;letter-spacing:.04em}
.gd-badge{display:inline-block;border-radius:4px;padding:0 .45em;font-weight:700;font-size:12px;
 color:#fff;background:#6e7781;white-space:nowrap}
.gd-badge--passed,.gd-badge--ok{background:#1a7f37}
.gd-badge--failed{background:#cf222e}
.gd-badge--error{background:#9a6700}
.gd-badge--skipped{background:#6e7781}
.gd-badge--simulated{background:#bf3989}
.gd-row--simulated td{background:#fff0f7}
.gd-row--diff td{background:#fff8c5}
.gd .gd-diff{background:#ffd8d3;color:#82071e;font-weight:700}
.gd-marker{font-weight:800;font-size:15px}
.gd-marker--diff{color:#cf222e}
.gd-marker--same{color:#1a7f37}
.gd-check--failed td,.gd-check--error td{background:#fff5f5}
.gd-timeline{width:100%}
.gd-timeline td.gd-track-cell{width:45%;min-width:120px}
.gd-track{position:relative;height:16px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:3px}
.gd-bar{position:absolute;top:0;bottom:0;min-width:2px;background:#0969da;border-radius:2px}
.gd-bar--failed{background:#cf222e}
.gd-bar--skipped{background:#afb8c1}
.gd-rto{font-size:16px}
.gd-trend svg{max-width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:4px}
.gd-legend span{margin-right:1em;white-space:nowrap}
.gd-dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;vertical-align:middle;margin-right:.25em}
.gd-footer{color:#656d76;font-size:12px}
"""


def redact(text: str) -> str:
    """Mask credentials: URL userinfo passwords, ``password=…`` and ``"password": …`` values."""
    masked = _mask_url_passwords(text)
    masked = _mask_after_keys(masked, _KEY_EQUALS, _EQUALS_SECRET)
    return _mask_after_keys(masked, _KEY_COLON, _COLON_SECRET)


def _mask_url_passwords(text: str) -> str:
    """``scheme://user:secret@`` -> ``scheme://user:***@``; the scheme starts at a word boundary, with a letter."""
    out: list[str] = []
    done = 0
    for run in _SCHEME_RUN.finditer(text):
        if run.start() < done or not _has_scheme(text, run.start(), run.end() - 3):
            continue
        userinfo = _USERINFO.match(text, run.end())
        if userinfo is None:
            continue
        out += [text[done:userinfo.start("secret")], MASK]
        done = userinfo.end("secret")
    return "".join(out) + text[done:] if out else text


def _has_scheme(text: str, start: int, end: int) -> bool:
    """Some letter in ``text[start:end]`` (scheme characters) begins a word: where ``\\b[A-Za-z]`` would match."""
    for index in range(start, end):
        char = text[index]
        if char.isascii() and char.isalpha():
            before = text[index - 1] if index else ""
            if not (before.isalnum() or before == "_"):
                return True
    return False


def _mask_after_keys(text: str, key: re.Pattern, secret: re.Pattern) -> str:
    """The value after every key (matched by ``key``) whose name holds a secret word, as ``***``."""
    out: list[str] = []
    done = position = 0
    while (head := key.search(text, position)) is not None:
        position = head.end()
        if not _SECRET_KEY.search(head.group()):
            continue
        value = secret.match(text, head.end())
        if value is None:
            continue
        out += [text[done:head.end()], MASK]
        done = position = value.end()
    return "".join(out) + text[done:] if out else text


def styles() -> str:
    """The ``<style>`` block every fragment relies on; include it once per page."""
    return f"<style>{_CSS}</style>"


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


def counts_table(summary: Mapping[str, Any]) -> str:
    """Source (dump, JSON export) against restored, per collection and table; differences marked ≠."""
    counts = summary.get("counts") or {}
    sources = summary.get("source_counts") or {}
    mongo_restored = counts.get("mongodb") or {}
    mongo_source = sources.get("mongodb") or {}
    pg_restored = counts.get("postgresql") or {}
    pg_source = sources.get("postgresql") or {}
    rows = []
    for namespace in sorted(set(mongo_restored) | set(mongo_source)):
        source = mongo_source.get(namespace) or {}
        rows.append(_count_row("MongoDB", namespace, source.get("dump"), source.get("export"),
                               mongo_restored.get(namespace), bool(mongo_source)))
    for table in sorted(set(pg_restored) | set(pg_source)):
        rows.append(_count_row("PostgreSQL", table, pg_source.get(table), None, pg_restored.get(table), bool(pg_source)))
    if counts.get("uploads_files") is not None:
        rows.append(_count_row("uploads", "regular files", None, None, counts["uploads_files"], False))
    differing = sum(1 for row in rows if "gd-row--diff" in row)
    if not rows:
        body = '<p class="gd-muted">Nothing was counted.</p>'
    else:
        note = (f'<p><span class="gd-marker gd-marker--diff">\u2260</span> {differing} '
                f'{"count differs" if differing == 1 else "counts differ"} from the source.</p>'
                if differing else "")
        body = (
            f"{note}<table class=\"gd-table gd-counts\"><thead><tr><th>Database</th><th>Collection / table</th>"
            "<th>In dump</th><th>In JSON export</th><th>Restored</th><th>Match</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return f'<section class="gd gd-counts-section"><h2>Counts</h2>{body}</section>'


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


def full_page(summary: Mapping[str, Any], history: Iterable[Mapping[str, Any]]) -> str:
    """A complete, self-contained report.html: no script, no external asset, CSP forbids both."""
    from grimoire_drill.report.html_run import attribution_table

    outcome = str(summary.get("outcome", "error")).upper()
    archive = summary.get("archive") or {}
    backup = archive.get("backup_id") or archive.get("name") or "no backup"
    title = f"Restore drill {outcome} \u2014 backup {backup}"
    tool = summary.get("tool") or {}
    footer = SEPARATOR.join(
        item for item in (
            f"{tool.get('name', 'grimoire-drill')} {tool.get('version', '')}".strip(),
            f"schema {summary.get('schema', '?')}",
            f"run {summary['run_id']}" if summary.get("run_id") else "",
            f"started {_when(summary.get('started_at'))}",
            f"finished {_when(summary.get('finished_at'))}",
        ) if item
    )
    sections = [
        verdict_banner(summary),
        simulated_banner(summary),
        archive_identity(summary),
        engines_table(summary),
        phase_timeline(summary),
        counts_table(summary),
        rounds_table(summary),
        checks_table(summary),
        attribution_table(summary),
        trend_svg(history),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title>{styles()}</head>"
        '<body style="margin:24px auto;max-width:1100px;padding:0 16px;background:#fff">'
        '<header class="gd"><h1 style="font-size:22px;margin:0 0 .6em 0">Le Grimoire restore drill</h1></header>'
        + "\n".join(section for section in sections if section)
        + f'\n<footer class="gd gd-footer">{_text(footer)}</footer></body></html>\n'
    )


# --- helpers -----------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """Redacted, escaped text for element content and attribute values; None shows as a dash."""
    if value is None or value == "":
        return "\u2014"
    return escape(redact(str(value)), quote=True)


def _token(value: str) -> str:
    """A value safe inside a class name (statuses are enums, but the summary is data)."""
    return re.sub(r"[^a-z0-9_-]", "", value.lower()) or "unknown"


def _kv_table(rows: Iterable[tuple[str, str]], *, escape_keys: bool = True) -> str:
    body = "".join(f"<tr><th>{_text(key) if escape_keys else key}</th><td>{value}</td></tr>" for key, value in rows)
    return f'<table class="gd-kv">{body}</table>'


def _totals_line(totals: Mapping[str, Any]) -> str:
    return ", ".join(f"{_text(totals.get(status, 0))} {status}" for status in CHECK_STATUSES)


def _count_row(database: str, name: str, dump: Any, export: Any, restored: Any, compared: bool) -> str:
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
        cells.append('<td class="gd-num gd-diff">missing</td>')
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


def _count(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _text(value)
    if isinstance(value, int):
        return f"{value:,}"
    return _text(value)


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


def _mask_secret_keys(value: Any) -> Any:
    """Structured masking: a value under a key named like a secret is hidden whatever it holds."""
    if isinstance(value, Mapping):
        return {
            key: MASK if isinstance(key, str) and _SECRET_KEY.search(key) else _mask_secret_keys(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_mask_secret_keys(item) for item in value]
    return value


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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _when(timestamp: Any) -> str:
    """ISO-8601 shown for people: '2026-11-24 03:31:47 UTC' (other offsets kept as written)."""
    if not isinstance(timestamp, str):
        return "unknown"
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ", timespec="seconds")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:04.1f} s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours} h {minutes:02d} min"


def _age(hours: Any) -> str:
    value = _number(hours)
    if value is None:
        return "unknown"
    if abs(value) >= 48:
        return f"{value:,.1f} h ({value / 24:.1f} days)"
    return f"{value:.1f} h"


def _human_bytes(size: float) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value):,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
