"""report.html and junit.xml through their own hooks: the answer first, pytest's own parts last.

Why a mixin of its own: these hooks only dress what the run already decided (the summary), and
pytest-html calls them on the plugin object. ``DrillRun`` inherits them, so pluggy finds them
there; they read ``summary``, ``history_path`` and ``_html_report`` of the run and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

PYTEST_ENVIRONMENT = pytest.StashKey[dict]()  # pytest-metadata's environment, shown folded in the technical details


class HtmlReportHooks:
    """pytest-html's hooks for a drill run (mixed into ``plugin.DrillRun``)."""

    summary: dict[str, Any] | None
    _html_report: Any
    history_path: Any  # a property of DrillRun

    def pytest_html_report_title(self, report) -> None:
        """A title until the verdict is known; kept so the summary hook can make it the verdict."""
        self._html_report = report
        report.title = "grimoire-drill — running"

    def pytest_html_results_summary(self, prefix: list, summary: list, postfix: list, session) -> None:
        from .report.html.technical import PYTEST_HTML_CSS, page_title, technical_details
        from .report.outputs import html_sections

        if self.summary is None:
            return
        if self._html_report is not None:
            self._html_report.title = page_title(self.summary)  # the tab and the heading carry the verdict and the backup
        prefix.extend(html_sections(self.summary, self.history_path))
        prefix.append(technical_details(session.config.stash.get(PYTEST_ENVIRONMENT, {})))
        prefix.append(PYTEST_HTML_CSS)

    def pytest_html_results_table_header(self, cells: list) -> None:
        from .report.html.technical import results_header

        results_header(cells)

    def pytest_html_results_table_row(self, report, cells: list) -> None:
        from .report.html.technical import results_row

        results_row(cells, dict(report.user_properties).get("check_id"), report.nodeid)

    def pytest_html_duration_format(self, duration: float) -> str:
        from .report.html.technical import duration_text

        return duration_text(duration)


def label_junit(config: pytest.Config, summary: dict[str, Any]) -> None:
    """junit.xml's suite says the verdict's scope and SIMULATED, for CI dashboards that show only the suite."""
    from _pytest.junitxml import xml_key

    from .report.facts import is_simulated
    from .report.scope import scope_of, verdict_label

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    scope = scope_of(summary)
    words = [verdict_label(summary)] + (["SIMULATED"] if is_simulated(summary) else [])
    xml.suite_name = f"grimoire-drill {' '.join(words)}"
    xml.add_global_property("run_id", summary.get("run_id", ""))
    xml.add_global_property("verdict", verdict_label(summary))
    xml.add_global_property("scope", f"{scope['kind']} ({scope['ran']} of {scope['of']} checks)"
                            + (f"; selection: {scope['selection']}" if scope.get("selection") else ""))
    xml.add_global_property("simulated", "true" if is_simulated(summary) else "false")
