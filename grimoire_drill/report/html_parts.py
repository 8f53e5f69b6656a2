"""The drill report's HTML sections, importable from one place (each lives in ``report/html/``).

Callers (the outputs writer, the CLI, attribution, --then, tests) import from here; the sections
themselves are split by concern: verdict, archive identity and engines, time line, counts,
growth since the previous generation, checks, trends, pre-migration rounds, the standalone page, and redaction.
"""

from __future__ import annotations

from grimoire_drill.report.html.checks import checks_table
from grimoire_drill.report.html.counts import counts_table
from grimoire_drill.report.html.growth import growth_table
from grimoire_drill.report.html.identity import archive_identity, engines_table
from grimoire_drill.report.html.page import full_page
from grimoire_drill.report.html.redaction import MASK, redact
from grimoire_drill.report.html.rounds import rounds_table
from grimoire_drill.report.html.style import styles
from grimoire_drill.report.html.timeline import phase_timeline
from grimoire_drill.report.html.trend import count_trends, trend_svg
from grimoire_drill.report.html.verdict import simulated_banner, verdict_banner

__all__ = ["MASK", "archive_identity", "checks_table", "count_trends", "counts_table", "engines_table", "full_page",
           "growth_table", "phase_timeline",
           "redact", "rounds_table", "simulated_banner", "styles", "trend_svg", "verdict_banner"]
