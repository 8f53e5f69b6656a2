"""A verdict says exactly what was proven: scope, one folder per run, SIMULATED on every output.

The real CLI (and ``pytest drills/``) on generated samples with a real PostgreSQL; every output
of the run is read back: console, summary.json, drill.prom, junit.xml, history, manifest, latest.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.report.schema import validate_summary

from test_cleanup import BIG, LiveRun

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")]

ENGINES = ("--mongo-engine", "simulated", "--postgres-engine", "local")
RUN = ("run", *ENGINES)


def _backups(archive: Path, where: Path) -> tuple[Path, str]:
    """A backups folder holding a copy of ``archive``, and its backup id."""
    folder = where / "backups"
    folder.mkdir(exist_ok=True)
    shutil.copy(archive, folder / archive.name)
    return folder, archive.name.removeprefix("backup_").removesuffix(".tar.gz")


def _prom(path: Path) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(path.read_text()) for s in family.samples}


def _suite(run_dir: Path) -> tuple[str, dict[str, str]]:
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    return suite.get("name"), {p.get("name"): p.get("value") for p in suite.iter("property")}


def _manifest_ok(run_dir: Path) -> str:
    done = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.sha256"], cwd=run_dir, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return (run_dir / "MANIFEST.sha256").read_text()


def _run_folders(backup_dir: Path) -> set[str]:
    return {p.name for p in backup_dir.iterdir() if p.is_dir() and not p.is_symlink()}


def test_archive_only_run_is_partial_everywhere_and_leaves_latest_on_the_full_run(sample_factory, run_cli, tmp_path):
    backups, backup_id = _backups(sample_factory(), tmp_path)
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    collector = textfile / "grimoire_drill.prom"
    full = run_cli(*RUN, backups, "--prom-file", collector)
    assert full.returncode == 0, full.output
    backup_dir = tmp_path / "reports" / backup_id
    (full_id,) = _run_folders(backup_dir)
    full_dir = backup_dir / full_id
    full_summary = json.loads((full_dir / "summary.json").read_text())
    everything = full_summary["scope"]["of"]
    off = sum(1 for check in full_summary["checks"] if check["status"] == "off")  # not asked: keeps a run full
    assert full_summary["scope"] == {"kind": "full", "ran": everything - off, "of": everything, "selection": "",
                                     "deselected": 0, "skipped": 0, "not_reached": 0, "off": off}
    assert everything == len(full_summary["checks"]) > 5
    assert full.stdout.startswith("PASSED: ") and "PARTIAL" not in full.output
    assert (backup_dir / "latest").resolve() == full_dir.resolve()
    assert (backup_dir / "LATEST").read_text().strip() == full_id
    assert collector.read_text() == (full_dir / "drill.prom").read_text()  # the textfile, wherever reports go
    assert _prom(collector)[("grimoire_drill_success", (("simulated", "true"),))] == 1.0

    partial = run_cli(*RUN, backups, "-k", "archive", "--prom-file", collector)
    assert partial.returncode == 0, partial.output  # on purpose (a CI job checking archives): not a failure...
    runs = _run_folders(backup_dir)
    assert len(runs) == 2 and full_id in runs  # one folder per run: the full report is still there
    (partial_id,) = runs - {full_id}
    run_dir = backup_dir / partial_id
    summary = json.loads((run_dir / "summary.json").read_text())
    validate_summary(summary)
    ran = len(summary["checks"])
    words = f"PARTIAL PASS ({ran} of {everything} checks)"
    # ...but every output says partial
    assert partial.stdout.startswith(words + ": "), partial.stdout
    assert summary["outcome"] == "passed"
    assert summary["scope"] == {"kind": "partial", "ran": ran, "of": everything, "selection": "-k archive",
                                "deselected": everything - ran, "skipped": 0, "not_reached": 0, "off": 0}
    assert words in (run_dir / "report.html").read_text()
    for prom in (run_dir / "drill.prom", collector):
        metrics = _prom(prom)
        assert metrics[("grimoire_drill_success", ())] == 0.0
        assert metrics[("grimoire_drill_scope_partial", ())] == 1.0
    name, properties = _suite(run_dir)
    assert words in name and properties["scope"].startswith(f"partial ({ran} of {everything} checks)")
    assert properties["run_id"] == partial_id == summary["run_id"]
    history = [json.loads(line) for line in (tmp_path / "reports" / "history.jsonl").read_text().splitlines()]
    assert [h["run_id"] for h in history] == [full_id, partial_id]
    assert history[-1]["verdict"] == words and history[-1]["scope"]["kind"] == "partial"
    assert f"# verdict: {words}" in _manifest_ok(run_dir)
    # latest still names the full run, and list shows the full verdict
    assert (backup_dir / "latest").resolve() == full_dir.resolve()
    assert (backup_dir / "LATEST").read_text().strip() == full_id
    listed = run_cli("list", backups)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("backup_"))
    assert f"PASSED SIMULATED {full_summary['finished_at']}" in row and f"since then: {words}" in row, row


def test_keep_runs_removes_old_run_folders_but_never_the_one_latest_names(sample_factory, run_cli, tmp_path):
    backups, backup_id = _backups(sample_factory(), tmp_path)
    full = run_cli(*RUN, backups, "-q")
    assert full.returncode == 0, full.output
    backup_dir = tmp_path / "reports" / backup_id
    (full_id,) = _run_folders(backup_dir)
    for _ in range(3):
        partial = run_cli(*RUN, backups, "-k", "archive", "--keep-runs", "2")
        assert partial.returncode == 0, partial.output
    kept = _run_folders(backup_dir)
    history = [json.loads(line)["run_id"] for line in (tmp_path / "reports" / "history.jsonl").read_text().splitlines()]
    assert len(history) == 4 and history[0] == full_id
    # the newest two, plus the full run latest names (older than both)
    assert kept == {full_id, *history[-2:]}, kept
    assert (backup_dir / "latest").resolve() == (backup_dir / full_id).resolve()
    assert len(history) == len(set(history))


def test_a_missing_prom_file_folder_stops_the_run_before_it_starts(sample_factory, run_cli, tmp_path):
    result = run_cli(*RUN, sample_factory(), "--report-dir", tmp_path / "r", "--prom-file", tmp_path / "no" / "x.prom")
    assert result.returncode == 2, result.output
    assert "--prom-file" in result.stderr and str(tmp_path / "no" / "x.prom") in result.stderr
    assert not (tmp_path / "r" / "summary.json").exists()


def test_simulated_is_said_by_junit_the_manifest_and_the_pytest_console(sample_factory, tmp_path):
    """``pytest drills/ --drill-backups X`` as a person runs it: the console ends with the verdict."""
    from grimoire_drill.cli import drills_dir

    archive = sample_factory()
    report = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(drills_dir() / "test_mongodb.py"), "-p", "no:cacheprovider",
         "--drill-backups", str(archive), "--drill-mongo-engine", "simulated", "--drill-postgres-engine", "local",
         "--drill-report-dir", str(report)],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((report / "summary.json").read_text())
    ran, everything = summary["scope"]["ran"], summary["scope"]["of"]
    assert summary["simulated"] is True and summary["scope"]["kind"] == "partial" and ran < everything
    assert summary["scope"]["selection"] == "test_mongodb.py"
    console = done.stdout
    assert "grimoire-drill verdict" in console
    assert f"PARTIAL PASS ({ran} of {everything} checks)" in console
    assert "SIMULATED: mongodb ran on the simulated engine" in console
    name, properties = _suite(report)
    assert "SIMULATED" in name and properties["simulated"] == "true"
    manifest = _manifest_ok(report)
    assert "# SIMULATED: mongodb" in manifest and f"# run: {summary['run_id']}" in manifest
    assert _prom(report / "drill.prom")[("grimoire_drill_simulated", (("simulated", "true"),))] == 1.0


def _one_run(report: Path) -> dict:
    """The folder's outputs all come from one run: summary, junit, manifest agree, and the manifest checks."""
    summary = json.loads((report / "summary.json").read_text())
    assert f"# run: {summary['run_id']}\n" in _manifest_ok(report)
    assert _suite(report)[1]["run_id"] == summary["run_id"]
    return summary


def test_a_second_drill_on_a_busy_report_dir_waits_and_says_so(sample_factory, tmp_path):
    report = tmp_path / "report"
    (report / "before").mkdir(parents=True)
    (report / "before" / "summary.json").write_text('{"left": "by an older --then run"}')
    with open(report / ".lock", "a") as held:  # another drill writes there now
        fcntl.flock(held, fcntl.LOCK_EX)
        run = LiveRun(*ENGINES, sample_factory(), "--report-dir", report, cwd=tmp_path)
        try:
            run.wait_for("is in use by another drill: waiting up to limits.report_dir_wait_s")
            assert not (report / "summary.json").exists()
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
        assert run.finish() == 0, run.output
    assert "the other drill finished; this run writes there now" in run.output
    assert _one_run(report)["run_id"] == run.run_id
    assert not (report / "before" / "summary.json").exists()  # nothing of an older run is left to mix in


def test_a_drill_that_waited_past_the_limit_writes_beside_the_busy_dir(sample_factory, tmp_path):
    from grimoire_drill.cli import drills_dir

    expectations = tmp_path / "expectations.toml"
    text = (drills_dir() / "expectations.toml").read_text()
    expectations.write_text(text.replace("report_dir_wait_s = 3600", "report_dir_wait_s = 0.5"))
    report = tmp_path / "report"
    report.mkdir()
    with open(report / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run = LiveRun(*ENGINES, sample_factory(), "--report-dir", report, "--expectations", expectations, cwd=tmp_path)
        assert run.finish() == 0, run.output
    own = tmp_path / f"report.{run.run_id}"
    assert f"still in use after limits.report_dir_wait_s (0.5) s: this run writes to {own}" in run.output
    assert _one_run(own)["run_id"] == run.run_id
    assert sorted(p.name for p in report.iterdir()) == [".lock"]  # the busy folder was not touched


def test_two_drills_at_once_on_one_report_dir_never_mix_their_outputs(sample_factory, tmp_path):
    archive = sample_factory()
    report = tmp_path / "report"
    runs = [LiveRun(*ENGINES, archive, "--report-dir", report, cwd=tmp_path) for _ in range(2)]
    codes = [run.finish() for run in runs]
    assert codes == [0, 0], [run.output for run in runs]
    waited = [run for run in runs if "is in use by another drill" in run.output]
    last = _one_run(report)
    assert last["run_id"] in {run.run_id for run in runs}
    if waited:  # they overlapped: the one that waited wrote last
        assert last["run_id"] == waited[0].run_id
    history = [json.loads(line)["run_id"] for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert sorted(history) == sorted(run.run_id for run in runs)


def test_an_interrupted_run_never_replaces_latest(sample_factory, run_cli, tmp_path):
    import signal

    backups, backup_id = _backups(sample_factory(scale=BIG), tmp_path)
    assert run_cli(*RUN, backups, "-q").returncode == 0
    backup_dir = tmp_path / "reports" / backup_id
    (full_id,) = _run_folders(backup_dir)
    run = LiveRun(*ENGINES, backups, cwd=tmp_path)
    try:
        run.wait_for("restore_postgresql: loading")
        run.signal(signal.SIGINT)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    interrupted = json.loads((backup_dir / run.run_id / "summary.json").read_text())
    assert interrupted["outcome"] == "error" and interrupted["scope"]["kind"] == "partial"
    assert (backup_dir / "latest").resolve() == (backup_dir / full_id).resolve()
    assert (backup_dir / "LATEST").read_text().strip() == full_id


def test_a_node_id_in_pytest_args_is_a_selection_counted_against_the_whole_drill(sample_factory, run_cli, tmp_path):
    report = tmp_path / "report"
    result = run_cli(*RUN, sample_factory(), "--report-dir", report,
                     "--pytest-args", "drills/test_archive.py::test_backup_is_fresh --ignore drills/test_mongodb.py")
    assert result.returncode == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    assert [c["id"] for c in summary["checks"]] == ["archive.fresh"]
    scope = summary["scope"]
    assert scope["kind"] == "partial" and scope["ran"] == 1 and scope["of"] > 40
    assert scope["selection"].startswith("test_archive.py::test_backup_is_fresh --ignore ")
    assert result.stdout.startswith(f"PARTIAL PASS (1 of {scope['of']} checks)")
    unknown = run_cli(*RUN, sample_factory(), "--report-dir", tmp_path / "r2",
                      "--pytest-args", "drills/test_archive.py::test_no_such_check")
    assert unknown.returncode == 2, unknown.output
    assert "test_archive.py::test_no_such_check: no check of the drill has this node id" in unknown.stderr
