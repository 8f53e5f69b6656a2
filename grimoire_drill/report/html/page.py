"""A complete, self-contained report.html made of the sections, for standalone use (``full_page``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from grimoire_drill.report.html.checks import checks_table
from grimoire_drill.report.html.common import SEPARATOR, _text, _when
from grimoire_drill.report.html.counts import counts_table
from grimoire_drill.report.html.growth import growth_table
from grimoire_drill.report.html.identity import archive_identity, engines_table
from grimoire_drill.report.html.rounds import rounds_table
from grimoire_drill.report.html.style import styles
from grimoire_drill.report.html.technical import page_title
from grimoire_drill.report.html.timeline import phase_timeline
from grimoire_drill.report.html.trend import count_trends, trend_svg
from grimoire_drill.report.html.verdict import simulated_banner, verdict_banner
from grimoire_drill.report.html_run import attribution_table


def full_page(summary: Mapping[str, Any], history: Iterable[Mapping[str, Any]]) -> str:
    """A complete, self-contained report.html: no script, no external asset, CSP forbids both."""
    title = page_title(summary)
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
        growth_table(summary),
        rounds_table(summary),
        checks_table(summary),
        attribution_table(summary),
        trend_svg(history),
        count_trends(history),
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
