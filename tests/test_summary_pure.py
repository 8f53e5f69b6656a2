"""build_summary is a pure function of plain values: a RunFacts made by hand, no session, no engine."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from grimoire_drill.config import build_config
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.exit_codes import EXIT_FAILED, EXIT_HARNESS, EXIT_INTERRUPTED, EXIT_PASSED, exit_code
from grimoire_drill.expectations import load_expectations
from grimoire_drill.report.schema import summary_problems, validate_summary
from grimoire_drill.report.scope import build_scope
from grimoire_drill.report.summary import CheckResult, build_summary
from grimoire_drill.run_facts import Phase, Problem, RunFacts
from grimoire_drill.thresholds import resolve_thresholds

STARTED = datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc)
PG_ROWS = {"users": 57, "recipes": 118, "alembic_version": 1}


def facts(**changes) -> RunFacts:
    """A clean run on docker engines, as the pipeline would hand it over."""
    base = RunFacts(
        run_id="20261124033000a1b2c3",
        started_at=STARTED,
        checked_at=STARTED + timedelta(seconds=28.5),
        archive={"path": "/srv/backups/backup_20261124_020000.tar.gz", "name": "backup_20261124_020000",
                 "backup_id": "20261124_020000", "kind": "tar.gz", "created_at": "2026-11-24T02:00:00+00:00",
                 "age_hours": 1.5, "size_bytes": 19293184, "sha256": "ab" * 32,
                 "backup_info": {"Backup ID": "20261124_020000"}},
        engines={"mongodb": {"kind": "docker", "version": "7.0.15", "simulated": False, "reason": "docker is up"},
                 "postgresql": {"kind": "docker", "version": "15.10", "simulated": False, "reason": "docker is up"}},
        phases=(Phase("checks", 4.9, "ok", 23.6),            # recorded out of order: the summary sorts them
                Phase("locate", 0.04, "ok", 0.0),
                Phase("archive", 2.81, "ok", 0.05, {"bytes": 19293184}),
                Phase("start", 11.62, "ok", 0.05),
                Phase("restore_mongodb", 6.35, "ok", 11.7, {"documents": 7508}),
                Phase("restore_postgresql", 3.12, "ok", 11.7)),
        counts={"mongodb": {"legrimoire.recipes": 1284}, "postgresql": dict(PG_ROWS), "uploads_files": 1190},
        source_counts={"mongodb": {"legrimoire.recipes": {"dump": 1284, "export": 1284}},
                       "postgresql": dict(PG_ROWS)},
    )
    return replace(base, **changes)


def checks(*statuses: str) -> list[CheckResult]:
    return [CheckResult(f"check.{n}", status, f"check {n} {status}", {"n": n}) for n, status in enumerate(statuses)]


def summary_of(run: RunFacts, results: list[CheckResult], **kwargs) -> dict:
    summary = build_summary(run, results, finished_at=STARTED + timedelta(seconds=30), **kwargs)
    # what the plugin adds beside the facts: the scope of the checks, the thresholds they judged against
    summary["scope"] = build_scope([c.status for c in results], full_count=len(results), deselected=0, selection="")
    summary["thresholds"] = resolve_thresholds(build_config(lambda option: None, {}), load_expectations()).as_summary()
    return summary


def test_a_clean_run_from_hand_made_facts_is_a_valid_summary():
    summary = summary_of(facts(), checks("passed", "passed", "passed"))
    validate_summary(summary)
    assert summary_problems(summary) == []
    assert summary["outcome"] == "passed" and exit_code(summary["outcome"], interrupted=False) == EXIT_PASSED
    assert [p["name"] for p in summary["phases"]] == ["locate", "archive", "start", "restore_mongodb",
                                                      "restore_postgresql", "checks"]
    pg = next(p for p in summary["phases"] if p["name"] == "restore_postgresql")
    assert pg["detail"] == {"rows": 176, "rows_per_s": round(176 / 3.12, 1)}  # from the restored counts
    assert summary["rto_seconds"] == 28.5 and summary["totals"]["passed"] == 3
    assert summary["archive"]["backup_info"] == {"Backup ID": "20261124_020000"}


def test_the_summary_is_a_function_of_its_facts_and_shares_nothing_with_them():
    run = facts()
    kept = copy.deepcopy(run)
    first = summary_of(run, checks("passed"))
    first["counts"]["postgresql"]["users"] = 0
    first["archive"]["backup_info"]["Backup ID"] = "changed"
    first["engines"]["mongodb"]["kind"] = "changed"
    next(p for p in first["phases"] if p["name"] == "archive")["detail"]["bytes"] = 0
    assert run == kept                                    # the writers may edit their summary freely
    assert summary_of(run, checks("passed")) == summary_of(kept, checks("passed"))


def test_a_backup_fault_fails_and_a_harness_fault_errors():
    bad = summary_of(facts(problems=(Problem.of(DrillFailure("no mongodb/ folder in the backup", where="b.tar.gz")),)),
                     checks("passed"))
    validate_summary(bad)
    assert bad["outcome"] == "failed" and exit_code(bad["outcome"], interrupted=False) == EXIT_FAILED
    assert bad["error"] == "b.tar.gz: no mongodb/ folder in the backup" and bad["problems"] == [bad["error"]]
    stuck = summary_of(facts(problems=(Problem.of(HarnessError("engine failed to start", fix="install Docker")),)),
                       checks("passed"))
    validate_summary(stuck)
    assert stuck["outcome"] == "error" and exit_code(stuck["outcome"], interrupted=False) == EXIT_HARNESS


def test_an_interrupted_or_timed_out_run_says_so():
    stopped = summary_of(facts(), checks("passed"), interrupted=True)
    validate_summary(stopped)
    assert stopped["outcome"] == "error" and stopped["error"] == "interrupted"
    assert exit_code(stopped["outcome"], interrupted=True) == EXIT_INTERRUPTED
    message = "the drill timed out after 60 s during restore_postgresql"
    late = summary_of(facts(timed_out=message), checks("passed"), interrupted=True)
    assert late["error"] == message
    assert exit_code(late["outcome"], interrupted=True, timed_out=message) == EXIT_HARNESS
