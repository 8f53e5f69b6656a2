"""HTML fragments: self-contained, verdict first, differences marked, secrets never shown."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grimoire_drill.report.atomic import write_atomic
from grimoire_drill.report.example import EXAMPLE_SHA256, example_history, example_summary
from grimoire_drill.report.html_parts import (
    archive_identity,
    checks_table,
    counts_table,
    engines_table,
    full_page,
    phase_timeline,
    redact,
    rounds_table,
    simulated_banner,
    styles,
    trend_svg,
    verdict_banner,
)
from grimoire_drill.report.schema import validate_summary

SECRET = "hunter2-S3cr3t"


class Page(HTMLParser):
    """Every start tag with its attributes, and the visible text, from a real HTML parser."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)

    def handle_data(self, data):
        self.text.append(data)

    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())

    def with_class(self, css_class: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.tags if css_class in attrs.get("class", "").split()]


def failed_summary() -> dict:
    summary = example_summary()
    summary["outcome"] = "failed"
    summary["counts"]["mongodb"]["legrimoire.recipes"] = 1280
    summary["source_counts"]["mongodb"]["legrimoire.ingredients"]["export"] = 5900
    summary["checks"][8] = {
        "id": "mongodb.counts",
        "status": "failed",
        "message": "legrimoire.recipes: 1,280 restored but 1,284 in the dump",
        "evidence": {"collections": [
            {"collection": "legrimoire.recipes", "dump": 1284, "restored": 1280},
            {"collection": "legrimoire.categories", "dump": 312, "restored": 312},
        ]},
    }
    summary["totals"] = {"passed": 13, "failed": 1, "skipped": 0, "error": 0}
    validate_summary(summary)
    return summary


def leaky_summary() -> dict:
    """Secrets everywhere a careless caller might put one."""
    summary = example_summary()
    summary["engines"]["postgresql"]["note"] = f"external: postgresql://grimoire:{SECRET}@db.internal:5432/le_grimoire"
    summary["engines"]["mongodb"]["note"] = f"mongodb+srv://admin:{SECRET}@cluster0.example/legrimoire?authSource=admin"
    summary["archive"]["backup_info"]["Notes"] = f"MONGODB_PASSWORD={SECRET}"
    summary["checks"][9]["message"] = f"connected with host=127.0.0.1 port=5433 user=grimoire password='{SECRET} x' dbname=le_grimoire"
    summary["checks"][9]["evidence"] = {
        "dsn": f"host=db password={SECRET} user=grimoire",
        "password": SECRET,
        "nested": [{"table": "users", "api_token": SECRET}],
        "log": f'{{"user": "grimoire", "password": "{SECRET}"}}',
    }
    summary["rounds"] = [
        {"label": "before", "counts": summary["counts"], "alembic_version": "51d56accfc10"},
        {"label": "after", "counts": summary["counts"], "alembic_version": "82d65ab11e92"},
    ]
    summary["then"] = {
        "command": f"PGPASSWORD={SECRET} alembic upgrade head",
        "exit_code": 0,
        "output_tail": f"INFO  [alembic] url postgresql://grimoire:{SECRET}@127.0.0.1/le_grimoire\nPassword: {SECRET}\n",
    }
    summary["error"] = f"could not connect to mongodb://root:{SECRET}@10.0.0.4:27017"
    return summary


def simulated_summary() -> dict:
    summary = example_summary()
    summary["simulated"] = True
    summary["engines"]["mongodb"] = {"kind": "simulated", "version": "mongomock 4.3.0", "simulated": True}
    validate_summary(summary)
    return summary


# --- self-contained ----------------------------------------------------------------------------


@pytest.mark.parametrize("build", [example_summary, failed_summary, leaky_summary, simulated_summary])
def test_full_page_loads_nothing_from_anywhere(build):
    html = full_page(build(), example_history())
    page = Page(html)
    tags = [tag for tag, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags and "img" not in tags
    for tag, attrs in page.tags:
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert "//" not in value or name == "content", (tag, name, value)
    assert "http://" not in html and "https://" not in html
    assert "url(" not in html and "@import" not in html
    csp = [attrs["content"] for tag, attrs in page.tags if attrs.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'"]


def test_every_fragment_is_a_scoped_section():
    summary = failed_summary()
    summary["rounds"] = [{"label": "before", "counts": {}, "alembic_version": "a"}]
    for fragment in (verdict_banner(summary), archive_identity(summary), engines_table(summary),
                     phase_timeline(summary), counts_table(summary), checks_table(summary),
                     rounds_table(summary), trend_svg(example_history()), simulated_banner(simulated_summary())):
        assert fragment.startswith('<section class="gd ') and fragment.endswith("</section>")
    css = styles()
    assert css.startswith("<style>") and css.endswith("</style>")
    selectors = re.findall(r"(?:^|})\s*([^{}]+)\{", css[len("<style>"):-len("</style>")])
    assert all(part.strip().startswith(".gd") for selector in selectors for part in selector.split(","))


# --- verdict and simulated banners -------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "word", "css"),
    [(example_summary, "PASSED", "gd-verdict--passed"), (failed_summary, "FAILED", "gd-verdict--failed")],
)
def test_verdict_banner_says_the_outcome_backup_and_time(build, word, css):
    page = Page(verdict_banner(build()))
    assert page.with_class(css)
    text = page.visible()
    assert word in text
    assert "backup 20261124_020000" in text
    assert "finished 2026-11-24 03:31:47 UTC" in text


def test_a_partial_pass_is_never_a_green_passed():
    summary = example_summary()
    summary["checks"] = summary["checks"][:5]
    summary["totals"] = {"passed": 5, "failed": 0, "skipped": 0, "error": 0}
    summary["scope"] = {"kind": "partial", "ran": 5, "of": 46, "selection": "-k archive", "deselected": 41,
                        "skipped": 0, "not_reached": 0}
    page = Page(verdict_banner(summary))
    assert page.with_class("gd-verdict--partial") and not page.with_class("gd-verdict--passed")
    text = page.visible()
    assert "PARTIAL PASS (5 of 46 checks)" in text
    assert "selected by -k archive" in text and "41 deselected" in text
    full = Page(verdict_banner(example_summary())).visible()
    assert "PARTIAL" not in full and "PASSED" in full


def test_failed_verdict_lists_the_failed_checks():
    text = Page(verdict_banner(failed_summary())).visible()
    assert "13 passed, 1 failed, 0 skipped, 0 error" in text
    assert "mongodb.counts : legrimoire.recipes: 1,280 restored but 1,284 in the dump" in text


def test_error_verdict_shows_the_one_line_error():
    summary = example_summary()
    summary.update(outcome="error", error="docker daemon not reachable — fix: start Docker or use --engine local")
    page = Page(verdict_banner(summary))
    assert page.with_class("gd-verdict--error")
    assert "ERROR" in page.visible() and "docker daemon not reachable" in page.visible()


def test_simulated_banner_only_when_simulated_and_names_the_engine():
    assert simulated_banner(example_summary()) == ""
    text = Page(simulated_banner(simulated_summary())).visible()
    assert "SIMULATED \u2014 not audit evidence" in text
    assert "MongoDB was restored into an in-process simulation" in text
    assert "PostgreSQL" not in text
    assert "SIMULATED" in Page(verdict_banner(simulated_summary())).visible()
    row = [attrs for attrs in Page(engines_table(simulated_summary())).with_class("gd-row--simulated")]
    assert len(row) == 1


# --- archive, engines, phases ------------------------------------------------------------------


def test_archive_identity_shows_everything_needed_to_find_the_backup_again():
    text = Page(archive_identity(example_summary())).visible()
    for expected in ("backup_20261124_020000", "20261124_020000", "/srv/legrimoire/backups/backup_20261124_020000.tar.gz",
                     "18.4 MiB (19,293,184 bytes)", EXAMPLE_SHA256, "2026-11-24 02:00:00 UTC", "1.5 h",
                     "Environment production", "Host legrimoire-prod-1"):
        assert expected in text, expected


def test_archive_identity_says_what_the_archive_was_judged_against():
    summary = example_summary()
    summary["thresholds"]["max_age_hours"] = {"value": 48.0, "source": "flag"}
    text = Page(archive_identity(summary)).visible()
    assert "Judged against at most 48 h old (flag) \u00b7 at least 100 KB (expectations.toml)" in text
    del summary["thresholds"]
    assert "Judged against" not in Page(archive_identity(summary)).visible()


def test_archive_identity_when_no_archive_was_found():
    summary = example_summary()
    summary["archive"] = {key: None for key in ("path", "name", "backup_id", "created_at", "age_hours",
                                                "size_bytes", "sha256")}
    text = Page(archive_identity(summary)).visible()
    assert "Size \u2014" in text and "Age at drill unknown" in text


def test_engines_table_has_versions_images_digests_and_tools():
    text = Page(engines_table(example_summary())).visible()
    for expected in ("MongoDB docker 7.0.15 mongo:7.0", "postgres:15-alpine", "mongorestore 100.10.0",
                     "sha256:3f1c9a0e5d7b2a4c6e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d"):
        assert expected in text, expected


def test_phase_timeline_has_one_bar_per_phase_laid_end_to_end_and_the_rto():
    summary = example_summary()
    page = Page(phase_timeline(summary))
    bars = page.with_class("gd-bar")
    assert len(bars) == len(summary["phases"])
    geometry = [
        tuple(float(v) for v in re.fullmatch(r"left:([\d.]+)%;width:([\d.]+)%", bar["style"]).groups()) for bar in bars
    ]
    assert geometry[0][0] == 0.0
    for (left, width), (next_left, _) in zip(geometry, geometry[1:]):
        assert next_left == pytest.approx(left + width, abs=0.02)
    assert geometry[-1][0] + geometry[-1][1] == pytest.approx(100.0, abs=0.02)
    text = page.visible()
    assert "Total restore time (RTO): 28.8 s" in text
    assert "documents 7,508" in text and "rate 1,182 documents/s" in text
    assert "rows 2,383" in text and "rate 764 rows/s" in text
    assert "bytes 18.4 MiB" in text and "rate 6.5 MiB/s" in text


def test_phase_timeline_places_overlapping_phases_where_they_began():
    summary = example_summary()
    summary["phases"] = [{"name": "archive", "seconds": 4.0, "status": "ok", "started_s": 0.0},
                         {"name": "start", "seconds": 2.0, "status": "ok", "started_s": 1.0},
                         {"name": "restore_mongodb", "seconds": 6.0, "status": "ok", "started_s": 4.0},
                         {"name": "restore_postgresql", "seconds": 3.0, "status": "ok", "started_s": 4.0}]
    bars = Page(phase_timeline(summary)).with_class("gd-bar")
    geometry = [tuple(float(v) for v in re.fullmatch(r"left:([\d.]+)%;width:([\d.]+)%", bar["style"]).groups())
                for bar in bars]
    assert geometry == [(0.0, 40.0), (10.0, 20.0), (40.0, 60.0), (40.0, 30.0)]  # a 10 s span, not 15 s end to end


def test_phase_detail_shows_each_measured_rate_in_its_unit():
    summary = example_summary()
    summary["phases"] = [
        {"name": "restore_mongodb", "seconds": 7.0, "status": "ok",
         "detail": {"documents": 114168, "documents_per_s": 16309.7}},
        {"name": "restore_postgresql", "seconds": 1.0, "status": "ok",
         "detail": {"dump_bytes": 4473446, "dump_bytes_per_s": 4473446.0, "rows": 66908, "rows_per_s": 66908.0}},
    ]
    text = Page(phase_timeline(summary)).visible()
    assert "documents 114,168" in text and "rate 16,310 documents/s" in text
    assert "rate 66,908 rows/s" in text and "rate 4.3 MiB/s" in text


def test_phase_timeline_marks_a_failed_phase_and_an_unreached_rto():
    summary = example_summary()
    summary["phases"] = [{"name": "locate", "seconds": 0.0, "status": "ok"},
                         {"name": "start", "seconds": 0.0, "status": "failed"}]
    summary["rto_seconds"] = None
    page = Page(phase_timeline(summary))
    assert page.with_class("gd-bar--failed")
    assert "not reached" in page.visible()


# --- counts ------------------------------------------------------------------------------------


def test_counts_table_all_equal_has_no_difference():
    page = Page(counts_table(example_summary()))
    assert page.with_class("gd-row--diff") == [] and page.with_class("gd-diff") == []
    assert "\u2260" not in page.visible()
    assert len(page.with_class("gd-marker--same")) == 13


def test_counts_table_highlights_each_difference_with_a_marker():
    html = counts_table(failed_summary())
    page = Page(html)
    assert len(page.with_class("gd-row--diff")) == 2
    assert "2 counts differ from the source" in page.visible()
    rows = re.findall(r'<tr class="gd-row--diff">(.*?)</tr>', html)
    recipes = next(row for row in rows if "legrimoire.recipes" in row)
    assert '<td class="gd-num gd-diff">1,280</td>' in recipes and "\u2260" in recipes
    ingredients = next(row for row in rows if "legrimoire.ingredients" in row)
    assert '<td class="gd-num gd-diff">5,900</td>' in ingredients
    assert '<td class="gd-num">5,912</td>' in ingredients


def test_counts_table_flags_a_collection_missing_from_the_restore():
    summary = example_summary()
    del summary["counts"]["mongodb"]["legrimoire.categories"]
    html = counts_table(summary)
    row = re.search(r'<tr class="gd-row--diff">(.*?)</tr>', html).group(1)
    assert "legrimoire.categories" in row and '<td class="gd-num gd-diff">missing</td>' in row


def test_counts_without_source_counts_compare_nothing():
    summary = example_summary()
    del summary["source_counts"]
    page = Page(counts_table(summary))
    assert page.with_class("gd-row--diff") == [] and page.with_class("gd-marker--same") == []
    assert "1,284" in page.visible()


# --- checks ------------------------------------------------------------------------------------


def test_checks_table_lists_every_check_with_open_evidence_for_failures():
    html = checks_table(failed_summary())
    page = Page(html)
    rows = page.with_class("gd-check")
    assert len(rows) == 14
    assert len(page.with_class("gd-check--failed")) == 1
    failed_row = re.search(r'<tr class="gd-check gd-check--failed">(.*?)</tr>', html).group(1)
    assert "<details open>" in failed_row
    assert "<th>collection</th><th>dump</th><th>restored</th>" in failed_row
    assert html.count("<details open>") == 1
    assert "mongodb.index.ingredients.off_id_1" in page.visible()


def test_evidence_too_deep_or_too_long_stays_readable():
    summary = example_summary()
    summary["checks"][0]["evidence"] = {
        "deep": {"a": {"b": {"c": {"d": 1}}}},
        "missing": [f"/uploads/recipes/{n:04d}.jpg" for n in range(120)],
        "mixed": [1, {"x": 2}],
    }
    html = checks_table(summary)
    assert "<pre>" in html and "&quot;d&quot;: 1" in html
    assert "/uploads/recipes/0049.jpg" in html and "/uploads/recipes/0050.jpg" not in html
    assert "and 70 more" in html


def test_untrusted_text_is_escaped():
    summary = example_summary()
    summary["checks"][0]["message"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    summary["checks"][0]["id"] = "archive.<b>found</b>"
    html = full_page(summary, [])
    assert "<script" not in html and "<img" not in html and "<b>found" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("postgresql://grimoire:pw@db:5432/le_grimoire", "postgresql://grimoire:***@db:5432/le_grimoire"),
        ("mongodb://root:p@ss@w0rd@10.0.0.4:27017/admin", "mongodb://root:***@10.0.0.4:27017/admin"),
        ("mongodb+srv://u:x@c.example/db?retryWrites=true", "mongodb+srv://u:***@c.example/db?retryWrites=true"),
        ("host=db user=grimoire password=pw dbname=x", "host=db user=grimoire password=*** dbname=x"),
        ("host=db password = 'a b\\'c' dbname=x", "host=db password = *** dbname=x"),
        ("PGPASSWORD=pw pg_restore -d x", "PGPASSWORD=*** pg_restore -d x"),
        ("mongodb://h/db?user=u&password=pw&tls=true", "mongodb://h/db?user=u&password=***&tls=true"),
        ('{"password": "pw", "user": "u"}', '{"password": ***, "user": "u"}'),
        ("Password: pw", "Password: ***"),
        ("postgresql://grimoire@db/le_grimoire", "postgresql://grimoire@db/le_grimoire"),
        ("legrimoire.recipes: 1,280 restored", "legrimoire.recipes: 1,280 restored"),
    ],
)
def test_redact(raw, shown):
    assert redact(raw) == shown


def test_no_secret_reaches_the_page_wherever_it_was_put():
    html = full_page(leaky_summary(), example_history())
    assert SECRET not in html
    assert "postgresql://grimoire:***@db.internal:5432/le_grimoire" in html
    assert "mongodb://root:***@10.0.0.4:27017" in html
    page = Page(html)
    assert "PGPASSWORD=*** alembic upgrade head" in page.visible()
    assert "alembic_version 51d56accfc10 82d65ab11e92" in page.visible()


# --- trend -------------------------------------------------------------------------------------


def svg_of(fragment: str) -> ElementTree.Element:
    """The <svg> element, parsed as XML: it must be well-formed on its own."""
    return ElementTree.fromstring(re.search(r"<svg.*</svg>", fragment, re.S).group(0))


def test_trend_with_no_runs_says_so():
    fragment = trend_svg([])
    svg = svg_of(fragment)
    assert svg.findall("circle") == []
    assert "No runs recorded yet" in "".join(svg.itertext())


def test_trend_with_one_run_draws_its_dot_without_a_line():
    svg = svg_of(trend_svg(example_history(1)))
    assert svg.findall("polyline") == []
    assert len(svg.findall("circle")) == 2


def test_trend_draws_outcome_dots_and_the_rto_line():
    history = example_history(8)
    svg = svg_of(trend_svg(history))
    lines = svg.findall("polyline")
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 8
    dots = [c for c in svg.findall("circle") if c.get("r") == "6"]
    assert len(dots) == 8
    assert dots[5].get("fill") == "#cf222e" and "failed" in dots[5].findtext("title")
    assert dots[6].get("fill") == "#ffffff" and "SIMULATED" in dots[6].findtext("title")
    assert all(d.get("fill") == "#1a7f37" for i, d in enumerate(dots) if i not in (5, 6))
    # The slowest run sits highest (smallest y).
    points = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    slowest = max(range(8), key=lambda i: history[i]["rto_seconds"])
    assert min(points, key=lambda p: p[1]) == points[slowest]


def test_trend_marks_a_partial_run():
    history = example_history(3)
    history[-1]["scope"] = {"kind": "partial", "ran": 5, "of": 46, "selection": "-k archive"}
    text = trend_svg(history)
    assert text.count("PARTIAL 5 of 46 checks") == 2  # the RTO point and the outcome dot of that run
    assert "PARTIAL" not in trend_svg(example_history(3))


def test_trend_breaks_the_line_where_a_run_has_no_rto_and_survives_odd_records():
    history = example_history(6)
    history[2]["rto_seconds"] = None
    history[4] = {"outcome": "mystery", "rto_seconds": "fast"}
    svg = svg_of(trend_svg(history))
    assert len(svg.findall("polyline")) == 1  # runs 0-1 form a line; 3 and 5 stand alone
    assert len([c for c in svg.findall("circle") if c.get("r") == "6"]) == 6


# --- rounds (pre-migration) --------------------------------------------------------------------


def test_rounds_table_absent_without_rounds():
    assert rounds_table(example_summary()) == ""


def test_rounds_table_puts_before_and_after_side_by_side():
    summary = example_summary()
    after = {"mongodb": dict(summary["counts"]["mongodb"]), "postgresql": dict(summary["counts"]["postgresql"]),
             "uploads_files": 1190}
    after["postgresql"]["recipes"] = 121
    summary["rounds"] = [
        {"label": "before", "counts": summary["counts"], "alembic_version": "51d56accfc10"},
        {"label": "after", "counts": after, "alembic_version": "82d65ab11e92"},
    ]
    summary["then"] = {"command": "alembic upgrade head", "exit_code": 0,
                       "output_tail": "INFO  [alembic.runtime.migration] Running upgrade 51d56accfc10 -> 82d65ab11e92"}
    validate_summary(summary)
    html = rounds_table(summary)
    page = Page(html)
    text = page.visible()
    assert "before after Change" in text
    assert "alembic_version 51d56accfc10 82d65ab11e92 \u2260 changed" in text
    assert "postgresql \u00b7 recipes 118 121 \u2260 +3" in text
    assert "postgresql \u00b7 users 57 57 =" in text
    assert len(page.with_class("gd-row--diff")) == 2
    assert "alembic upgrade head exited with 0" in text
    assert "Running upgrade 51d56accfc10 -&gt; 82d65ab11e92" in html


# --- in a real browser -------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize(("build", "expected"), [
    (failed_summary, "\u2718 FAILED"),
    (simulated_summary, "SIMULATED \u2014 not audit evidence"),
])
def test_chromium_renders_the_standalone_page(tmp_path, build, expected):
    page = write_atomic(tmp_path / "report.html", full_page(build(), example_history()))
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = Page(result.stdout)
    assert expected in dom.visible()
    assert dom.with_class("gd-verdict") and dom.with_class("gd-trend")
    assert any(tag == "svg" for tag, _ in dom.tags)
