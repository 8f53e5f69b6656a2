"""The real report.html of a real drill, rendered by a real headless Chromium, offline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

CHROMIUM = shutil.which("chromium")


class _ExternalRefs(HTMLParser):
    """Collects every attribute that would make the browser fetch something."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            return  # a link is only followed when clicked; it loads nothing
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith(("#", "data:", "javascript:")):
                self.refs.append(f"{tag} {name}={value}")


def _drill(sample_factory, tmp_path_factory, defect, expected_exit):
    import os
    import sys

    report = tmp_path_factory.mktemp("render") / "r"
    archive = sample_factory(defect)
    env = dict(os.environ, TESTCONTAINERS_RYUK_DISABLED="true")
    done = subprocess.run([sys.executable, "-m", "grimoire_drill.cli", "run", "--mongo-engine", "simulated",
                           "--postgres-engine", "local", str(archive), "--report-dir", str(report)],
                          capture_output=True, text=True, env=env, cwd=report.parent, timeout=600)
    assert done.returncode == expected_exit, done.stdout + done.stderr
    return report


@pytest.fixture(scope="module")
def drilled(sample_factory, tmp_path_factory):
    return _drill(sample_factory, tmp_path_factory, "duplicate-off-id", 1)


@pytest.fixture(scope="module")
def drilled_pass(sample_factory, tmp_path_factory):
    return _drill(sample_factory, tmp_path_factory, None, 0)


@pytest.fixture(scope="module")
def drilled_pg_cut(sample_factory, tmp_path_factory):
    return _drill(sample_factory, tmp_path_factory, "truncated-pg-dump", 1)


# Test instrumentation, on a copy of the report: once pytest-html's script has drawn the page,
# note where the verdict ends and what is visible, for --dump-dom to print.
MEASURE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const verdict = document.querySelector('.gd-verdict');
  const hidden = (sel) => { const el = document.querySelector(sel); return !el || getComputedStyle(el).display === 'none'; };
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({
    verdictTop: verdict.getBoundingClientRect().top, verdictBottom: verdict.getBoundingClientRect().bottom,
    screen: window.innerHeight, verdictWord: verdict.querySelector('.gd-verdict__word').textContent,
    environmentHidden: hidden('#environment-header') && hidden('#environment'),
    technicalTop: document.getElementById('technical-details').getBoundingClientRect().top,
    resultsTop: document.getElementById('results-table').getBoundingClientRect().top,
    headers: [...document.querySelectorAll('#results-table-head th')].map((th) => th.textContent),
    title: document.title});
  document.body.appendChild(out);
}, 500));
</script>"""


def _measure(report_dir, tmp_path) -> dict:
    page = tmp_path / "measured.html"
    page.write_text((report_dir / "report.html").read_text().replace("</body>", MEASURE + "</body>"))
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic", "--window-size=1280,800",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="measured">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("which, word", [("drilled", "FAILED"), ("drilled_pass", "PASSED")])
def test_chromium_shows_the_verdict_in_the_first_screen(request, tmp_path, which, word):
    report_dir = request.getfixturevalue(which)
    summary = json.loads((report_dir / "summary.json").read_text())
    seen = _measure(report_dir, tmp_path)
    assert word in seen["verdictWord"]
    assert 0 <= seen["verdictTop"] and seen["verdictBottom"] <= seen["screen"], seen   # above the fold, whole
    assert seen["title"].startswith(word) and summary["archive"]["backup_id"] in seen["title"]
    assert seen["environmentHidden"], "pytest-html's Environment box stands above the verdict"
    assert seen["verdictBottom"] < seen["technicalTop"] < seen["resultsTop"]  # pytest's table: technical, at the end
    assert seen["headers"][:3] == ["Result", "Check", "pytest node"]


def test_a_failed_postgres_restore_keeps_every_count_row(drilled_pg_cut):
    """A cut database.backup: every table still has its row, "in dump N, restored —"."""
    summary = json.loads((drilled_pg_cut / "summary.json").read_text())
    assert summary["source_counts"]["postgresql_from"] == "database.sql"
    tables = summary["source_counts"]["postgresql"]
    assert {"users", "recipes", "alembic_version"} <= set(tables) and tables["users"] > 0
    page = (drilled_pg_cut / "report.html").read_text()
    rows_html = page[page.index("gd-counts-section"):].split("</tr>")
    for table, rows in tables.items():
        (row,) = [html for html in rows_html if f"<code>{table}</code>" in html]
        assert f">{rows:,}</td>" in row and "\u2014 (restore failed)</td>" in row, row
