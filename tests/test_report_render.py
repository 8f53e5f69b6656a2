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


@pytest.fixture(scope="module")
def drilled(sample_factory, tmp_path_factory):
    import os
    import sys

    report = tmp_path_factory.mktemp("render") / "r"
    archive = sample_factory("duplicate-off-id")
    env = dict(os.environ, TESTCONTAINERS_RYUK_DISABLED="true")
    done = subprocess.run([sys.executable, "-m", "grimoire_drill.cli", "run", "--mongo-engine", "simulated",
                           "--postgres-engine", "local", str(archive), "--report-dir", str(report)],
                          capture_output=True, text=True, env=env, cwd=report.parent, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    return report


def test_report_is_self_contained(drilled):
    page = (drilled / "report.html").read_text()
    parser = _ExternalRefs()
    parser.feed(page)
    assert parser.refs == [], parser.refs
    assert not re.search(r"url\(\s*['\"]?https?:", page)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_chromium_shows_verdict_simulated_banner_and_named_defect(drilled, tmp_path):
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom",
         (drilled / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert "FAILED" in dom
    assert "SIMULATED" in dom
    summary = json.loads((drilled / "summary.json").read_text())
    assert summary["archive"]["sha256"] in dom
    failed = [c for c in summary["checks"] if c["status"] == "failed"]
    assert any("off_id" in c["message"] for c in failed)
    assert "mongodb.unique.ingredients.off_id_1" in dom
    # pytest-html's own results table is rendered by its inline script: the rows exist in the live DOM
    assert dom.count("mongodb.index.") >= 12
