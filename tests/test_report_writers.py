"""Report file writers on realistic summaries: schema, Prometheus textfile, history, manifest."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import stat
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families

from grimoire_drill.errors import HarnessError
from grimoire_drill.report.atomic import write_atomic
from grimoire_drill.report.example import EXAMPLE_SHA256, example_summary
from grimoire_drill.report.history import append_history, history_record, read_history
from grimoire_drill.report.manifest import MANIFEST_NAME, verify_manifest, write_manifest
from grimoire_drill.report.prometheus import render_prom, write_prom
from grimoire_drill.report.schema import SummaryInvalid, load_schema, summary_problems, validate_summary

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "grimoire_drill" / "schemas" / "summary.schema.json"


def failed_summary() -> dict:
    """The nightly drill on a backup whose recipes collection lost documents."""
    summary = example_summary()
    summary["outcome"] = "failed"
    summary["counts"]["mongodb"]["legrimoire.recipes"] = 1280
    summary["checks"][8] = {
        "id": "mongodb.counts",
        "status": "failed",
        "message": "legrimoire.recipes: 1,280 restored but 1,284 in the dump",
        "evidence": {"collections": [{"collection": "legrimoire.recipes", "dump": 1284, "restored": 1280}]},
    }
    summary["totals"] = {"passed": 13, "failed": 1, "skipped": 0, "error": 0}
    return summary


def error_summary() -> dict:
    """No archive could be opened and no engine started: most values are unknown (null)."""
    summary = example_summary()
    summary.update(
        outcome="error",
        error="docker daemon not reachable and no local mongod — fix: install Docker or pass --engine simulated",
        engines={"mongodb": {"kind": "none", "version": "not started", "simulated": False, "reason": "no daemon"}},
        phases=[{"name": "locate", "seconds": 0.02, "status": "ok"}, {"name": "start", "seconds": 0.4, "status": "failed"}],
        rto_seconds=None,
        counts={"mongodb": {}, "postgresql": {}, "uploads_files": None},
        checks=[],
        totals={"passed": 0, "failed": 0, "skipped": 0, "error": 0},
        scope={"kind": "partial", "ran": 0, "of": 14, "selection": "", "deselected": 0, "skipped": 0,
               "not_reached": 14},
    )
    del summary["source_counts"]
    summary["archive"].update(created_at=None, age_hours=None, size_bytes=None, sha256=None)
    return summary


def simulated_summary() -> dict:
    summary = example_summary()
    summary["simulated"] = True
    summary["engines"]["mongodb"] = {
        "kind": "simulated", "version": "mongomock 4.3.0", "simulated": True,
        "note": "no MongoDB server available; native BSON loader",
    }
    return summary


# --- schema ------------------------------------------------------------------------------------


def test_schema_file_is_a_valid_draft_2020_12_schema_and_is_what_the_package_loads():
    Draft202012Validator.check_schema(load_schema())
    assert load_schema() == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("build", [example_summary, failed_summary, error_summary, simulated_summary])
def test_realistic_summaries_validate(build):
    validate_summary(build())


def test_summary_survives_a_json_round_trip_and_still_validates(tmp_path):
    target = write_atomic(tmp_path / "summary.json", json.dumps(failed_summary(), indent=2))
    validate_summary(json.loads(target.read_text(encoding="utf-8")))


def test_extras_are_allowed_where_they_live():
    summary = example_summary()
    summary["lead_added_later"] = {"anything": [1, 2]}
    summary["engines"]["postgresql"]["container"] = "grimoire-drill-pg-1"
    summary["phases"][3]["detail"]["batches"] = 8
    summary["checks"][0]["evidence"]["nested"] = {"deep": [{"x": 1}]}
    validate_summary(summary)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda s: s.update(outcome="ok"), "outcome"),
        (lambda s: s["phases"][0].update(name="unpack"), "phases.0.name"),
        (lambda s: s["phases"][1].update(status="done"), "phases.1.status"),
        (lambda s: s["checks"][2].update(status="xfailed"), "checks.2.status"),
        (lambda s: s["engines"]["mongodb"].update(kind="podman"), "engines.mongodb.kind"),
        (lambda s: s["engines"]["mongodb"].update(kind="simulated"), "engines.mongodb.simulated"),
        (lambda s: s["engines"].update(mongo={"kind": "docker", "version": "7", "simulated": False}), "engines"),
        (lambda s: s["archive"].update(sha256="ABC"), "archive.sha256"),
        (lambda s: s["archive"].update(backup_id="2026-11-24"), "archive.backup_id"),
        (lambda s: s["archive"].update(size_bytes=-1), "archive.size_bytes"),
        (lambda s: s.update(finished_at="2026-11-24 03:31:47"), "finished_at"),
        (lambda s: s["counts"]["mongodb"].update(recipes=3), "counts.mongodb"),
        (lambda s: s["counts"]["postgresql"].update(users=-4), "counts.postgresql.users"),
        (lambda s: s.update(schema="grimoire-drill/summary@1"), "schema"),
        (lambda s: s["scope"].update(kind="complete"), "scope.kind"),
        (lambda s: s["scope"].update(kind="partial"), "scope.kind"),
        (lambda s: s["scope"].update(ran=13), "scope.ran"),
        (lambda s: s["scope"].update(ran=15), "scope.ran"),
        (lambda s: s["scope"].pop("selection"), "scope"),
        (lambda s: s.update(rounds=[{"label": "during", "counts": {}}]), "rounds.0.label"),
    ],
)
def test_wrong_values_are_rejected_naming_the_field(mutate, path):
    summary = example_summary()
    mutate(summary)
    with pytest.raises(SummaryInvalid) as caught:
        validate_summary(summary)
    assert any(problem.startswith(f"{path}:") for problem in caught.value.problems), caught.value.problems
    assert path in str(caught.value)
    assert caught.value.exit_code == 2 and isinstance(caught.value, HarnessError)


@pytest.mark.parametrize(
    "key",
    ["schema", "tool", "outcome", "started_at", "finished_at", "archive", "engines", "phases",
     "rto_seconds", "counts", "checks", "totals", "scope"],
)
def test_every_design_key_is_required(key):
    summary = example_summary()
    del summary[key]
    with pytest.raises(SummaryInvalid, match=f"'{key}' is a required property"):
        validate_summary(summary)


@pytest.mark.parametrize("key", ["sha256", "backup_id", "size_bytes", "created_at"])
def test_archive_keys_are_required(key):
    summary = example_summary()
    del summary["archive"][key]
    assert any(f"'{key}' is a required property" in p for p in summary_problems(summary))


def test_a_pass_needs_a_known_archive_both_engines_and_no_failed_check():
    unknown_archive = example_summary()
    unknown_archive["archive"]["sha256"] = None
    assert summary_problems(unknown_archive)

    one_engine = example_summary()
    del one_engine["engines"]["postgresql"]
    assert any("postgresql" in p for p in summary_problems(one_engine))

    passed_with_failure = failed_summary()
    passed_with_failure["outcome"] = "passed"
    assert any(p.startswith("totals.failed:") for p in summary_problems(passed_with_failure))


def test_a_partial_pass_may_leave_unread_what_it_did_not_check():
    """`--pytest-args test_archive.py::test_backup_is_fresh` names the archive, never reads it: no sha256."""
    fresh_only = partial_summary()
    fresh_only["archive"]["sha256"] = None
    assert summary_problems(fresh_only) == []
    partial_with_failure = partial_summary()
    partial_with_failure["checks"][0]["status"] = "failed"
    partial_with_failure["totals"] = {"passed": 4, "failed": 1, "skipped": 0, "error": 0}
    assert any(p.startswith("totals.failed:") for p in summary_problems(partial_with_failure))


def test_totals_must_add_up_the_checks():
    summary = example_summary()
    summary["totals"]["passed"] = 15
    assert summary_problems(summary) == ["totals.passed: 15 but 14 check(s) have status 'passed'"]


def test_time_must_run_forwards_and_dates_must_exist():
    backwards = example_summary()
    backwards["finished_at"] = "2026-11-24T03:00:00+00:00"
    assert summary_problems(backwards) == ["finished_at: earlier than started_at"]
    impossible = example_summary()
    impossible["archive"]["created_at"] = "2026-13-45T02:00:00Z"
    assert any(p.startswith("archive.created_at:") for p in summary_problems(impossible))


# --- atomic writes -----------------------------------------------------------------------------


def test_write_atomic_replaces_whole_file_keeps_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "drill.prom"
    write_atomic(target, "first\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.chmod(target, 0o640)
    write_atomic(target, b"second\n")
    assert target.read_bytes() == b"second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["drill.prom"]


def test_write_atomic_refuses_a_missing_folder(tmp_path):
    with pytest.raises(HarnessError, match="folder does not exist"):
        write_atomic(tmp_path / "absent" / "summary.json", "{}")
    assert list(tmp_path.iterdir()) == []


# --- Prometheus textfile -----------------------------------------------------------------------


def parse_prom(text: str) -> dict[str, dict[tuple, float]]:
    """{metric name: {sorted label items: value}} from a real parser."""
    metrics: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        metrics.setdefault(family.name, {})
        for sample in family.samples:
            metrics.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return metrics


def test_prom_file_holds_the_passed_drill(tmp_path):
    summary = example_summary()
    target = tmp_path / "drill.prom"
    write_prom(summary, target)
    text = target.read_text(encoding="utf-8")
    metrics = parse_prom(text)

    assert metrics["grimoire_drill_success"] == {(): 1.0}
    assert metrics["grimoire_drill_last_run_timestamp_seconds"][()] == pytest.approx(
        datetime.fromisoformat("2026-11-24T03:31:47.25+00:00").timestamp()
    )
    assert metrics["grimoire_drill_backup_age_seconds"][()] == pytest.approx(5400.0)
    assert metrics["grimoire_drill_backup_timestamp_seconds"][()] == pytest.approx(
        datetime.fromisoformat("2026-11-24T02:00:00+00:00").timestamp()
    )
    assert metrics["grimoire_drill_rto_seconds"][()] == pytest.approx(28.84)
    phases = {labels[0][1]: value for labels, value in metrics["grimoire_drill_phase_seconds"].items()}
    assert phases == pytest.approx({p["name"]: p["seconds"] for p in summary["phases"]})
    checks = {labels[0][1]: value for labels, value in metrics["grimoire_drill_checks"].items()}
    assert checks == {"passed": 14.0, "failed": 0.0, "skipped": 0.0, "error": 0.0, "off": 0.0}
    documents = {labels[0][1]: v for labels, v in metrics["grimoire_drill_restored_documents"].items()}
    assert documents == {"legrimoire.recipes": 1284, "legrimoire.ingredients": 5912, "legrimoire.categories": 312}
    rows = {labels[0][1]: v for labels, v in metrics["grimoire_drill_restored_rows"].items()}
    assert rows["users"] == 57 and rows["recipes"] == 118 and len(rows) == 10
    assert metrics["grimoire_drill_simulated"] == {(): 0.0}
    assert metrics["grimoire_drill_backup_info"] == {(("backup_id", "20261124_020000"),): 1.0}
    for name in ("success", "last_run_timestamp_seconds", "backup_age_seconds", "phase_seconds", "checks",
                 "rto_seconds", "restored_documents", "restored_rows", "simulated"):
        assert f"# HELP grimoire_drill_{name} " in text
        assert f"# TYPE grimoire_drill_{name} gauge" in text
    assert [p.name for p in tmp_path.iterdir()] == ["drill.prom"]


def test_only_the_info_metric_carries_the_backup_id():
    for family in text_string_to_metric_families(render_prom(example_summary())):
        for sample in family.samples:
            if family.name != "grimoire_drill_backup_info":
                assert "backup_id" not in sample.labels
                assert EXAMPLE_SHA256 not in sample.labels.values()


def test_prom_for_a_failed_and_a_simulated_drill():
    failed = parse_prom(render_prom(failed_summary()))
    assert failed["grimoire_drill_success"] == {(): 0.0}
    assert failed["grimoire_drill_checks"][(("status", "failed"),)] == 1.0
    assert failed["grimoire_drill_outcome"][(("outcome", "failed"),)] == 1.0
    assert failed["grimoire_drill_restored_documents"][(("collection", "legrimoire.recipes"),)] == 1280

    simulated = parse_prom(render_prom(simulated_summary()))
    marked = (("simulated", "true"),)
    assert simulated["grimoire_drill_simulated"] == {marked: 1.0}
    assert simulated["grimoire_drill_success"] == {marked: 1.0}
    assert simulated["grimoire_drill_engine_info"][
        (("database", "mongodb"), ("kind", "simulated"), ("simulated", "true"), ("version", "mongomock 4.3.0"))
    ] == 1.0
    # every series of a simulated run carries the label; the names are those of a real run
    assert set(simulated) == set(parse_prom(render_prom(example_summary())))
    for family in text_string_to_metric_families(render_prom(simulated_summary())):
        for sample in family.samples:
            assert sample.labels.get("simulated") == "true", sample


def partial_summary() -> dict:
    """`run -k archive`: five archive checks passed, nothing restored."""
    summary = example_summary()
    summary["checks"] = summary["checks"][:5]
    summary["totals"] = {"passed": 5, "failed": 0, "skipped": 0, "error": 0}
    summary["scope"] = {"kind": "partial", "ran": 5, "of": 46, "selection": "-k archive", "deselected": 41,
                        "skipped": 0, "not_reached": 0}
    return summary


def test_prom_success_is_1_only_for_a_full_pass():
    full = parse_prom(render_prom(example_summary()))
    assert full["grimoire_drill_success"] == {(): 1.0} and full["grimoire_drill_scope_partial"] == {(): 0.0}
    partial = parse_prom(render_prom(partial_summary()))
    assert partial["grimoire_drill_success"] == {(): 0.0}
    assert partial["grimoire_drill_scope_partial"] == {(): 1.0}
    assert partial["grimoire_drill_outcome"][(("outcome", "passed"),)] == 1.0  # it did pass what it ran


def test_prom_leaves_unknown_values_absent_rather_than_zero():
    metrics = parse_prom(render_prom(error_summary()))
    assert metrics["grimoire_drill_success"] == {(): 0.0}
    assert metrics["grimoire_drill_outcome"][(("outcome", "error"),)] == 1.0
    assert metrics["grimoire_drill_backup_age_seconds"] == {}
    assert metrics["grimoire_drill_rto_seconds"] == {}
    assert metrics["grimoire_drill_phase_seconds"][(("phase", "start"),)] == pytest.approx(0.4)


def test_prom_escapes_odd_label_values_and_sums_repeated_phases():
    summary = example_summary()
    summary["counts"]["postgresql"]['we"ird\\table\nname'] = 3
    summary["phases"].append({"name": "checks", "seconds": 1.1, "status": "ok"})
    metrics = parse_prom(render_prom(summary))
    assert metrics["grimoire_drill_restored_rows"][(("table", 'we"ird\\table\nname'),)] == 3
    assert metrics["grimoire_drill_phase_seconds"][(("phase", "checks"),)] == pytest.approx(6.0)


# --- history -----------------------------------------------------------------------------------


def test_history_appends_one_line_per_run_and_reads_oldest_first(tmp_path):
    history = tmp_path / "history.jsonl"
    assert read_history(history) == []
    first, second = example_summary(), failed_summary()
    second["run_id"] = "20261125033000ffeedd"
    second["finished_at"] = "2026-11-25T03:32:00+00:00"
    append_history(first, history)
    append_history(second, history)

    lines = history.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    records = read_history(history)
    assert [r["run_id"] for r in records] == ["20261124033000a1b2c3", "20261125033000ffeedd"]
    assert records[0] == {
        "run_id": "20261124033000a1b2c3",
        "finished_at": "2026-11-24T03:31:47.250000+00:00",
        "backup_id": "20261124_020000",
        "archive": "backup_20261124_020000",
        "sha256": EXAMPLE_SHA256,
        "outcome": "passed",
        "rto_seconds": 28.84,
        "simulated": False,
        "totals": {"passed": 14, "failed": 0, "skipped": 0, "error": 0},
        "scope": {"kind": "full", "ran": 14, "of": 14, "selection": ""},
        "verdict": "PASSED",
    }
    assert records[1]["outcome"] == "failed" and records[1]["totals"]["failed"] == 1
    assert history_record(simulated_summary())["simulated"] is True


def test_history_limit_keeps_the_newest(tmp_path):
    history = tmp_path / "history.jsonl"
    for number in range(7):
        summary = example_summary()
        summary["run_id"] = f"run{number}"
        append_history(summary, history)
    assert [r["run_id"] for r in read_history(history, limit=3)] == ["run4", "run5", "run6"]
    assert read_history(history, limit=0) == []


def test_history_skips_a_torn_last_line_and_garbage_and_the_next_append_stays_whole(tmp_path):
    history = tmp_path / "history.jsonl"
    append_history(example_summary(), history)
    with history.open("ab") as handle:
        handle.write(b"not json at all\n[1, 2]\n\xff\xfe\n")
        handle.write(b'{"run_id": "killed-mid-write", "outcome": "pas')
    assert [r["run_id"] for r in read_history(history)] == ["20261124033000a1b2c3"]

    later = failed_summary()
    later["run_id"] = "after-the-crash"
    append_history(later, history)
    assert [r["run_id"] for r in read_history(history)] == ["20261124033000a1b2c3", "after-the-crash"]


def _append_many(path: str, worker: int, count: int) -> None:
    for number in range(count):
        summary = example_summary()
        summary["run_id"] = f"w{worker}-{number}"
        summary["checks"][0]["evidence"]["padding"] = "x" * 2000  # not in the record; records stay small
        append_history(summary, path)


def test_concurrent_appends_never_interleave(tmp_path):
    history = tmp_path / "history.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(history), w, 50)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
        assert process.exitcode == 0
    # A writer that reads the tail while another's write is in flight may add a spare newline
    # (its torn-line guard); blank lines are harmless. No line may hold parts of two records.
    lines = [line for line in history.read_text(encoding="utf-8").splitlines() if line]
    assert len(lines) == 200
    assert all(json.loads(line)["outcome"] == "passed" for line in lines)
    assert {r["run_id"] for r in read_history(history, limit=1000)} == {f"w{w}-{n}" for w in range(4) for n in range(50)}


def test_history_in_a_missing_folder_is_a_harness_error(tmp_path):
    with pytest.raises(HarnessError, match="cannot open run history"):
        append_history(example_summary(), tmp_path / "absent" / "history.jsonl")


# --- manifest ----------------------------------------------------------------------------------


def write_report_dir(report_dir: Path) -> list[Path]:
    summary = example_summary()
    report_dir.mkdir()
    outputs = [
        write_atomic(report_dir / "summary.json", json.dumps(summary, indent=2)),
        write_atomic(report_dir / "report.html", "<!DOCTYPE html><title>PASSED</title><p>PASSED</p>\n"),
        write_atomic(report_dir / "junit.xml", '<?xml version="1.0"?><testsuites/>\n'),
    ]
    write_prom(summary, report_dir / "drill.prom")
    outputs.append(report_dir / "drill.prom")
    return outputs


def test_manifest_of_a_fresh_report_verifies(tmp_path):
    report_dir = tmp_path / "20261124_020000"
    outputs = write_report_dir(report_dir)
    archive = "/srv/legrimoire/backups/backup_20261124_020000.tar.gz"
    manifest = write_manifest(report_dir, outputs, archive, EXAMPLE_SHA256)

    assert manifest == report_dir / MANIFEST_NAME
    text = manifest.read_text(encoding="utf-8")
    assert f"# archive: {EXAMPLE_SHA256}  {archive}\n" in text
    listed = [line.split("  ", 1)[1] for line in text.splitlines() if not line.startswith("#")]
    assert listed == ["drill.prom", "junit.xml", "report.html", "summary.json"]
    assert verify_manifest(report_dir) == []


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_sha256sum_checks_a_fresh_manifest(tmp_path):
    report_dir = tmp_path / "report"
    write_manifest(report_dir, write_report_dir(report_dir), None, None)
    result = subprocess.run(
        ["sha256sum", "-c", "--strict", MANIFEST_NAME], cwd=report_dir, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "report.html: OK" in result.stdout


def test_editing_the_report_after_the_manifest_is_detected(tmp_path):
    report_dir = tmp_path / "report"
    outputs = write_report_dir(report_dir)
    write_manifest(report_dir, outputs, "/backups/backup_20261124_020000.tar.gz", EXAMPLE_SHA256)

    html = report_dir / "report.html"
    html.write_text(html.read_text(encoding="utf-8").replace("PASSED", "PASSED!"), encoding="utf-8")
    (report_dir / "junit.xml").unlink()
    problems = verify_manifest(report_dir)
    assert len(problems) == 2
    assert problems[0] == "junit.xml: missing"
    assert problems[1].startswith("report.html: modified (sha256 ")
    if shutil.which("sha256sum"):
        result = subprocess.run(["sha256sum", "-c", MANIFEST_NAME], cwd=report_dir, capture_output=True, check=False)
        assert result.returncode != 0


def test_manifest_refuses_files_outside_the_report_dir_and_flags_a_tampered_manifest(tmp_path):
    report_dir = tmp_path / "report"
    outputs = write_report_dir(report_dir)
    stray = tmp_path / "elsewhere.txt"
    stray.write_text("x", encoding="utf-8")
    with pytest.raises(HarnessError, match="outside the report folder"):
        write_manifest(report_dir, [*outputs, stray], None, None)

    write_manifest(report_dir, outputs, None, None)
    manifest = report_dir / MANIFEST_NAME
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write(f"{'0' * 64}  ../elsewhere.txt\nthis is not a manifest line\n")
    problems = verify_manifest(report_dir)
    assert problems == [
        "../elsewhere.txt: points outside the report folder",
        f"{MANIFEST_NAME} line 8: not '<sha256>  <file>'",
    ]
    manifest.unlink()
    assert verify_manifest(report_dir) == [f"{MANIFEST_NAME}: missing"]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils sha256sum not installed")
def test_manifest_header_names_the_run_its_scope_and_simulated(tmp_path):
    report_dir = tmp_path / "report"
    outputs = write_report_dir(report_dir)
    summary = partial_summary()
    summary.update(simulated=True, engines=simulated_summary()["engines"])
    text = write_manifest(report_dir, outputs, None, None, summary=summary).read_text(encoding="utf-8")
    assert "# run: 20261124033000a1b2c3\n" in text
    assert "# verdict: PARTIAL PASS (5 of 46 checks)\n" in text
    assert "# scope: partial, 5 of 46 checks, selection: -k archive\n" in text
    assert "# SIMULATED: mongodb ran on the simulated engine" in text
    result = subprocess.run(["sha256sum", "-c", "--strict", MANIFEST_NAME], cwd=report_dir, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr  # comments stay invisible to sha256sum
    real = write_manifest(report_dir, outputs, None, None, summary=example_summary()).read_text(encoding="utf-8")
    assert "# verdict: PASSED\n" in real and "SIMULATED" not in real


# --- scope ---------------------------------------------------------------------------------------


def test_scope_is_full_only_when_every_check_of_the_drill_ran():
    from grimoire_drill.report.scope import build_scope

    assert build_scope(["passed"] * 3, full_count=3, deselected=0, selection="")["kind"] == "full"
    narrowed = build_scope(["passed"] * 2, full_count=3, deselected=1, selection="-k archive")
    assert narrowed == {"kind": "partial", "ran": 2, "of": 3, "selection": "-k archive", "deselected": 1,
                        "skipped": 0, "not_reached": 0, "off": 0}
    skipped = build_scope(["passed", "passed", "skipped"], full_count=3, deselected=0, selection="")
    assert skipped["kind"] == "partial" and skipped["ran"] == 2 and skipped["skipped"] == 1
    stopped = build_scope(["failed"], full_count=3, deselected=0, selection="-x")
    assert stopped["kind"] == "partial" and stopped["not_reached"] == 2
    assert build_scope([], full_count=0, deselected=0, selection="")["kind"] == "partial"


def test_an_off_check_keeps_the_run_full_and_is_named_off_never_passed():
    from grimoire_drill.report.scope import build_scope, off_line, verdict_label

    scope = build_scope(["passed", "passed", "off"], full_count=3, deselected=0, selection="")
    assert scope["kind"] == "full" and scope["ran"] == 2 and scope["off"] == 1 and scope["skipped"] == 0
    assert build_scope(["off", "off"], full_count=2, deselected=0, selection="")["kind"] == "partial"
    summary = example_summary()
    summary["checks"][-1].update(status="off", message="max_drop_percent is off in expectations.toml")
    summary["totals"] = {**summary["totals"], "passed": summary["totals"]["passed"] - 1, "off": 1}
    summary["scope"] = {**summary["scope"], "ran": summary["scope"]["ran"] - 1, "off": 1}
    assert summary_problems(summary) == []
    assert verdict_label(summary) == "PASSED"
    assert off_line(summary).startswith("OFF: 1 check(s) not asked") and summary["checks"][-1]["id"] in off_line(summary)
    from grimoire_drill.report.console import verdict_lines

    lines = "\n".join(verdict_lines(summary, None))
    assert ", 1 off" in lines and "OFF: 1 check(s)" in lines


def test_history_keeps_the_scope_and_list_shows_the_last_full_verdict(tmp_path):
    from grimoire_drill.report.history import last_verdicts

    history = tmp_path / "history.jsonl"
    full, partial = failed_summary(), partial_summary()
    partial["run_id"], partial["finished_at"] = "20261124050000abcdef", "2026-11-24T05:00:00+00:00"
    append_history(full, history)
    append_history(partial, history)
    records = read_history(history)
    assert records[1]["verdict"] == "PARTIAL PASS (5 of 46 checks)"
    assert records[1]["scope"] == {"kind": "partial", "ran": 5, "of": 46, "selection": "-k archive"}
    shown = last_verdicts(records)["20261124_020000"]
    assert shown.startswith("FAILED 2026-11-24T03:31:47"), shown  # the partial pass does not hide the failure
    assert "since then: PARTIAL PASS (5 of 46 checks)" in shown
    append_history(simulated_summary(), history)
    assert last_verdicts(read_history(history))["20261124_020000"].startswith("PASSED SIMULATED")


def test_a_whole_drill_that_failed_with_skipped_checks_still_stands_for_the_backup(tmp_path):
    """A missing collection skips its index checks: the run is partial, but its FAILED must not hide."""
    from grimoire_drill.report.history import last_verdicts
    from grimoire_drill.report.scope import is_whole_drill_verdict

    failed = failed_summary()
    failed["scope"] = {"kind": "partial", "ran": 12, "of": 14, "selection": "", "deselected": 0, "skipped": 2,
                       "not_reached": 0}
    assert is_whole_drill_verdict(failed)
    assert not is_whole_drill_verdict(partial_summary())
    narrowed_failure = dict(failed, scope=dict(failed["scope"], selection="-k mongodb", deselected=2))
    assert not is_whole_drill_verdict(narrowed_failure)
    skipped_pass = dict(example_summary(), scope=dict(failed["scope"]))
    assert not is_whole_drill_verdict(skipped_pass)  # a pass that could not judge every check is partial

    history = tmp_path / "history.jsonl"
    append_history(example_summary(), history)
    later = dict(failed, run_id="20261124060000abcdef", finished_at="2026-11-24T06:00:00+00:00")
    append_history(later, history)
    shown = last_verdicts(read_history(history))["20261124_020000"]
    assert shown == "FAILED (partial: 12 of 14 checks) 2026-11-24T06:00:00+00:00"
