"""$GITHUB_STEP_SUMMARY Markdown (a pure function of the summary) and the CI examples in examples/."""

from __future__ import annotations

from pathlib import Path

import yaml

from grimoire_drill.report.ci_summary import escape_markdown, step_summary
from grimoire_drill.report.example import example_summary

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_a_pass_says_verdict_backup_and_rto():
    text = step_summary(example_summary(), Path("/r/run"))
    heading = text.splitlines()[0]
    assert heading.startswith("### ") and "PASSED" in heading and "backup\\_20261124\\_020000" in heading
    assert "RTO " in text and "Report: /r/run/report\\.html" in text
    assert "| check |" not in text  # nothing failed: no table


def test_failed_checks_are_listed_and_backup_text_is_never_markup():
    summary = example_summary()
    summary["outcome"] = "failed"
    summary["checks"][3].update(status="failed", message="collection <img src=x onerror=alert(1)> | **PASSED**\nforged")
    summary["totals"]["failed"], summary["totals"]["passed"] = 1, summary["totals"]["passed"] - 1
    text = step_summary(summary)
    assert "FAILED" in text.splitlines()[0]
    (row,) = [line for line in text.splitlines() if line.startswith("| ") and "failed" in line]
    assert escape_markdown(summary["checks"][3]["id"]) in row
    assert "<img" not in text and "&lt;img" in text
    assert "\\*\\*PASSED\\*\\*" in row and "\\|" in row and row.count(" | ") == 2  # 3 cells: the pipe is escaped
    assert "\nforged" not in text  # one line per check


def test_escape_keeps_text_readable():
    assert escape_markdown("a_b <c> & d") == "a\\_b &lt;c&gt; &amp; d"


def _run_lines(script) -> str:
    return "\n".join(step if isinstance(step, str) else step.get("run", "") for step in script)


def test_ci_examples_use_docker_and_say_every_exit_code():
    github = yaml.safe_load((EXAMPLES / "nightly-drill.yml").read_text())
    gitlab = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    github_run = _run_lines(github["jobs"]["drill"]["steps"])
    gitlab_run = _run_lines(gitlab["restore-drill"]["script"])
    for command in (github_run, gitlab_run):
        assert "grimoire-drill run" in command and "--engine docker" in command and "--require-real" in command
    assert all(f"{code})" in gitlab_run for code in (0, 1, 2, 3)) and "exit $code" in gitlab_run
    for text in ((EXAMPLES / "nightly-drill.yml").read_text(), (EXAMPLES / "gitlab-ci.yml").read_text()):
        assert "0 passed, 1 the backup is bad, 2 the drill could not run, 3 the --then command failed" in text
