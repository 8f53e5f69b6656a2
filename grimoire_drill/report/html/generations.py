"""``index.html`` of a ``--generations`` run: one row per backup drilled, then the drift between them.

Built from ``generations.json`` alone (``report.generations_index``), self-contained like the
drill's own page: no script, no external asset, every value escaped (``_text``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grimoire_drill.report.html.common import DATABASE_NAMES, SEPARATOR, _age, _count, _duration, _number, _text, _when
from grimoire_drill.report.html.style import styles

BADGES = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "INTERRUPTED": "skipped"}


def index_page(index: Mapping[str, Any]) -> str:
    """The whole page: a banner with the totals, the generations table, one drift table per generation."""
    generations = index.get("generations") or []
    outcome = str(index.get("outcome", "error"))
    colour = outcome if outcome in ("passed", "failed", "error") else "partial"
    selection = index.get("selection") or {}
    chosen = _text(selection.get("mode"))
    if selection.get("count") is not None:
        chosen += f" {_text(selection.get('count'))}"
    if selection.get("seed") is not None:
        chosen += f", seed {_text(selection.get('seed'))} (from {_text(selection.get('seed_source'))})"
    meta = [f"{len(generations)} of {_text(selection.get('found'))} backups in <code>{_text(index.get('backups'))}</code>",
            f"chosen: {chosen}", f"finished {_text(_when(index.get('finished_at')))}"]
    if index.get("simulated"):
        meta.append("<strong>SIMULATED</strong> (not audit evidence)")
    banner = (f'<section class="gd gd-verdict gd-verdict--{colour}" role="status" aria-label="Generations verdict">'
              f'<div class="gd-verdict__word">{_text(outcome.upper())}</div>'
              f'<div class="gd-verdict__meta">{SEPARATOR.join(meta)}</div>')
    if index.get("partial"):
        missing = ", ".join(str(name) for name in index.get("not_drilled") or []) or "none"
        banner += f'<div class="gd-verdict__scope">PARTIAL: interrupted; not drilled: {_text(missing)}</div>'
    banner += "</section>"
    sections = [banner, _generations_table(generations), *(_drift_table(g) for g in generations)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Restore drill of {len(generations)} generations \u2014 {_text(outcome.upper())}</title>{styles()}</head>"
        '<body style="margin:24px auto;max-width:1100px;padding:0 16px;background:#fff">'
        '<header class="gd"><h1 style="font-size:22px;margin:0 0 .6em 0">Le Grimoire restore drill: generations</h1></header>'
        + "\n".join(section for section in sections if section)
        + f'\n<footer class="gd gd-footer">{_text("run " + str(index.get("run_id", "")))} \u00b7 '
          f'{_text(index.get("schema"))}</footer></body></html>\n'
    )


def _generations_table(generations: list[Mapping[str, Any]]) -> str:
    rows = []
    for generation in generations:
        verdict = str(generation.get("verdict"))
        badge = f'<span class="gd-badge gd-badge--{BADGES.get(verdict, "error")}">{_text(verdict)}</span>'
        if generation.get("scope"):
            badge += f' <span class="gd-muted">{_text(generation.get("scope"))}</span>'
        if generation.get("simulated"):
            badge += ' <span class="gd-badge gd-badge--simulated">SIMULATED</span>'
        failed = _count(generation.get("failed_checks"))
        if generation.get("error_checks"):
            failed += f" (+{_count(generation.get('error_checks'))} error)"
        report = generation.get("report")
        link = f'<a href="{_text(report)}">report.html</a>' if report else "\u2014"
        note = f'<div class="gd-muted">{_text(generation.get("note"))}</div>' if generation.get("note") else ""
        rows.append(
            f"<tr><td><code>{_text(generation.get('backup'))}</code>{note}</td><td>{_text(_age(generation.get('age_hours')))}</td>"
            f"<td>{badge}</td><td class=\"gd-num\">{failed}</td>"
            f"<td class=\"gd-num\">{_text(_duration(_number(generation.get('rto_seconds'))))}</td>"
            f"<td>{_text(_when(generation.get('judged_as_of'))) if generation.get('judged_as_of') else 'now'}</td>"
            f"<td>{link}</td></tr>")
    return ('<section class="gd"><h2>Generations, oldest first</h2><table><thead><tr><th>backup</th><th>age</th>'
            "<th>verdict</th><th>failed checks</th><th>RTO</th><th>freshness judged as of</th><th>report</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></section>")


def _drift_table(generation: Mapping[str, Any]) -> str:
    drift = generation.get("drift") or {}
    previous = drift.get("previous")
    if previous is None:
        return ""
    rows = []
    for database in ("mongodb", "postgresql"):
        for row in drift.get(database) or []:
            percent = row.get("delta_percent")
            shown = "\u2014" if percent is None else f"{percent:+.2f} %"
            marked = ' class="gd-row--diff"' if row.get("delta") not in (0, None) or row.get("previous") is None \
                or row.get("current") is None else ""
            rows.append(f"<tr{marked}><td>{_text(DATABASE_NAMES.get(database, database))}</td>"
                        f"<td><code>{_text(row.get('name'))}</code></td><td class=\"gd-num\">{_count(row.get('previous'))}</td>"
                        f"<td class=\"gd-num\">{_count(row.get('current'))}</td><td class=\"gd-num\">{_text(shown)}</td></tr>")
    more = f"<p class=\"gd-muted\">{_text(drift.get('omitted'))} more not shown</p>" if drift.get("omitted") else ""
    body = "".join(rows) if rows else '<tr><td colspan="5">no counts to compare (a drill made no summary)</td></tr>'
    return (f'<section class="gd"><h3>Drift {_text(previous)} \u2192 {_text(generation.get("backup"))}</h3>'
            "<table><thead><tr><th>database</th><th>collection / table</th><th>previous</th><th>this</th>"
            f"<th>change</th></tr></thead><tbody>{body}</tbody></table>{more}</section>")
