"""End to end: the real CLI on generated backups, real PostgreSQL, the simulated MongoDB here.

Each defect must give exit 1 and a message naming what is wrong; a clean backup passes with the
counts that were written into it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")


def _summary(report_dir: Path) -> dict:
    return json.loads((report_dir / "summary.json").read_text())


def test_clean_backup_passes_with_the_right_counts(sample_factory, run_cli, tmp_path):
    archive = sample_factory()
    report = tmp_path / "report"
    result = run_cli(*RUN, archive.parent, "--report-dir", report)
    assert result.returncode == 0, result.output
    assert result.stdout.startswith("PASSED: ") and "SIMULATED" in result.stdout and "PARTIAL" not in result.stdout
    summary = _summary(report)
    assert summary["outcome"] == "passed" and summary["simulated"] is True
    scope = summary["scope"]  # a lone backup has no previous generation: those checks are off, the run stays full
    assert scope["kind"] == "full" and scope["ran"] + scope["off"] == scope["of"] == len(summary["checks"])
    assert scope["skipped"] == 0
    assert summary["totals"]["failed"] == 0 and summary["totals"]["error"] == 0
    for namespace, source in summary["source_counts"]["mongodb"].items():
        assert summary["counts"]["mongodb"][namespace] == source["dump"] > 0
        if source.get("export") is not None:
            assert source["export"] == source["dump"]
    assert summary["counts"]["postgresql"]["users"] == summary["source_counts"]["postgresql"]["users"] > 0
    assert summary["counts"]["postgresql"]["alembic_version"] == 1
    assert summary["thresholds"]["max_age_hours"] == {"value": 26.0, "source": "expectations"}
    assert summary["thresholds"]["min_size_kb"] == {"value": 100.0, "source": "expectations"}
    phases = {p["name"]: p for p in summary["phases"]}
    mongo, pg = phases["restore_mongodb"]["detail"], phases["restore_postgresql"]["detail"]
    assert mongo["documents"] == sum(summary["counts"]["mongodb"].values()) and mongo["documents_per_s"] > 0
    assert mongo["parallel_collections"] == 1  # the in-process store: one GIL, so one collection at a time
    assert pg["rows"] == sum(summary["counts"]["postgresql"].values()) and pg["rows_per_s"] > 0
    # engines start while the archive is read: the time line records when each phase began
    assert phases["start"]["started_s"] < phases["archive"]["started_s"] + phases["archive"]["seconds"]
    assert phases["restore_mongodb"]["started_s"] >= phases["archive"]["started_s"] + phases["archive"]["seconds"] - 0.01
    ids = {c["id"] for c in summary["checks"]}
    assert {"mongodb.index.ingredients.off_id_1", "mongodb.unique.ingredients.off_id_1",
            "postgresql.table.alembic_version", "archive.fresh", "consistency.uploads"} <= ids
    for name in ("report.html", "junit.xml", "summary.json", "drill.prom", "MANIFEST.sha256"):
        assert (report / name).is_file(), name
    assert "SIMULATED" in (report / "report.html").read_text()
    _outputs_are_what_they_claim(report, summary)


def _outputs_are_what_they_claim(report: Path, summary: dict) -> None:
    """The real outputs of a run: schema-valid summary, parseable Prometheus file, intact manifest, JUnit."""
    import subprocess
    import xml.etree.ElementTree as ET

    from prometheus_client.parser import text_string_to_metric_families

    from grimoire_drill.report.schema import validate_summary

    validate_summary(summary)
    simulated = (("simulated", "true"),) if summary["simulated"] else ()  # every series of a simulated run says so
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families((report / "drill.prom").read_text())
               for s in family.samples}
    full_pass = summary["outcome"] == "passed" and summary["scope"]["kind"] == "full"
    assert samples[("grimoire_drill_success", simulated)] == (1.0 if full_pass else 0.0)
    assert samples[("grimoire_drill_checks", tuple(sorted((("status", "passed"), *simulated))))] == summary["totals"]["passed"]
    assert abs(samples[("grimoire_drill_backup_age_seconds", simulated)] - summary["archive"]["age_hours"] * 3600) < 5
    assert ("grimoire_drill_phase_seconds", tuple(sorted((("phase", "restore_postgresql"), *simulated)))) in samples
    done = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.sha256"], cwd=report, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cases = ET.parse(report / "junit.xml").getroot().iter("testcase")
    assert sum(1 for _ in cases) == len(summary["checks"])
    manifest = (report / "MANIFEST.sha256").read_text()
    assert f"# run: {summary['run_id']}\n" in manifest and ("# SIMULATED: " in manifest) == summary["simulated"]


@pytest.mark.parametrize("defect, named", [
    ("duplicate-off-id", "off_id"),
    ("missing-index", "created_at_-1"),
    ("missing-collection", "legrimoire.categories"),
    ("export-count-mismatch", "ingredients_export.json"),
])
def test_defect_fails_the_drill_and_is_named(sample_factory, run_cli, tmp_path, defect, named):
    archive = sample_factory(defect)
    report = tmp_path / "report"
    result = run_cli(*RUN, archive, "--report-dir", report)
    assert result.returncode == 1, result.output
    assert "FAILED" in result.stdout
    failed = [c for c in _summary(report)["checks"] if c["status"] == "failed"]
    assert failed, "a defect must fail at least one check"
    assert any(named in c["message"] for c in failed), [c["message"] for c in failed]
    assert named in result.stdout


def test_duplicate_off_id_names_the_value(sample_factory, run_cli, tmp_path):
    result = run_cli(*RUN, sample_factory("duplicate-off-id"), "--report-dir", tmp_path / "r")
    unique = [line for line in result.stdout.splitlines() if "mongodb.unique.ingredients" in line]
    assert unique and "off_id=" in unique[0] and "appears 2 times" in unique[0], result.stdout


def test_empty_backups_folder_is_exit_1_with_message(run_cli, tmp_path):
    empty = tmp_path / "backups"
    empty.mkdir()
    result = run_cli(*RUN, empty, "--report-dir", tmp_path / "r")
    assert result.returncode == 1, result.output
    assert "no backup" in result.output.lower() and str(empty) in result.output
    summary = _summary(tmp_path / "r")
    assert summary["outcome"] == "failed"
    assert not any(c["status"] == "passed" for c in summary["checks"])


def test_stale_backup_fails_on_age_from_the_name(sample_factory, run_cli, tmp_path):
    archive = sample_factory(hours_old=30)
    result = run_cli(*RUN, archive, "--report-dir", tmp_path / "r")
    assert result.returncode == 1
    assert "archive.fresh" in result.stdout and "more than 26 h" in result.stdout


def test_thresholds_from_flag_and_environment_are_what_the_checks_judge_against(sample_factory, run_cli, tmp_path):
    """A 30 h old backup passes archive.fresh under --max-age-hours 48; the summary says 48 came from the flag."""
    report = tmp_path / "r"
    result = run_cli(*RUN, sample_factory(hours_old=30), "--report-dir", report, "--max-age-hours", "48", "-k", "archive",
                     env={"GRIMOIRE_DRILL_MIN_SIZE_KB": "1"})
    assert result.returncode == 0, result.output
    summary = _summary(report)
    assert summary["thresholds"]["max_age_hours"] == {"value": 48.0, "source": "flag"}
    assert summary["thresholds"]["min_size_kb"] == {"value": 1.0, "source": "env"}
    checks = {c["id"]: c for c in summary["checks"]}
    assert checks["archive.fresh"]["status"] == "passed" and checks["archive.fresh"]["evidence"]["max_age_hours"] == 48
    assert checks["archive.size"]["evidence"]["min_size_kb"] == 1


def test_extracted_folder_is_drilled_too(sample_factory, run_cli, tmp_path):
    import tarfile

    with tarfile.open(sample_factory()) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = next((tmp_path / "x").glob("backup_*"))
    result = run_cli(*RUN, folder, "--report-dir", tmp_path / "r", "--min-size-kb", "1")
    assert result.returncode == 0, result.output


def test_default_report_dir_is_one_folder_per_run_and_history_grows(sample_factory, run_cli, tmp_path):
    """reports/<backup id>/<run id>/ for each run; latest names the newest full one; one history for all."""
    archive = sample_factory()
    backups = tmp_path / "backups"
    backups.mkdir()
    shutil.copy(archive, backups / archive.name)
    for _ in range(2):
        assert run_cli(*RUN, backups).returncode == 0
    backup_id = archive.name.removeprefix("backup_").removesuffix(".tar.gz")
    lines = (tmp_path / "reports" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["outcome"] == "passed" for line in lines)
    run_ids = [json.loads(line)["run_id"] for line in lines]
    backup_dir = tmp_path / "reports" / backup_id
    assert {p.name for p in backup_dir.iterdir() if p.is_dir() and not p.is_symlink()} == set(run_ids)
    for run_id in run_ids:
        assert (backup_dir / run_id / "report.html").is_file()
        assert _summary(backup_dir / run_id)["run_id"] == run_id
    assert (backup_dir / "latest").resolve() == (backup_dir / run_ids[-1]).resolve()
    assert (backup_dir / "LATEST").read_text().strip() == run_ids[-1]
    assert (backup_dir / "latest" / "summary.json").is_file()


@pytest.mark.parametrize("zone, outcome", [("America/Toronto", 0), ("Asia/Tokyo", 1)])
def test_archive_names_are_read_in_the_backup_hosts_time_zone(sample_factory, run_cli, tmp_path, zone, outcome):
    """Named 23 h ago by a UTC clock: 18 h old if the host clock was Toronto's, 32 h if Tokyo's."""
    archive = sample_factory(hours_old=23)
    result = run_cli(*RUN, archive, "--report-dir", tmp_path / "r", "--backup-timezone", zone)
    assert result.returncode == outcome, result.output
    age = next(c for c in _summary(tmp_path / "r")["checks"] if c["id"] == "archive.fresh")["evidence"]["age_hours"]
    assert abs(age - {"America/Toronto": 18, "Asia/Tokyo": 32}[zone]) < 0.2


def test_archive_checks_alone_start_no_engine(sample_factory, run_cli, tmp_path):
    """`-k archive` verifies the archive only: no server is started and nothing is restored to fill counts."""
    report = tmp_path / "report"
    result = run_cli(*RUN, sample_factory(), "--report-dir", report, "-k", "archive")
    assert result.returncode == 0, result.output
    summary = _summary(report)
    assert {c["id"].split(".")[0] for c in summary["checks"]} == {"archive"}
    assert summary["scope"]["kind"] == "partial" and summary["scope"]["ran"] == len(summary["checks"])
    assert result.stdout.startswith(f"PARTIAL PASS ({len(summary['checks'])} of {summary['scope']['of']} checks)")
    assert {p["name"] for p in summary["phases"]} == {"locate", "archive", "checks", "report"}
    assert summary["counts"]["mongodb"] == {} and summary["simulated"] is False
    assert summary["archive"]["sha256"] is not None
