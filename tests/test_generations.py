"""--generations without drilling: the values it takes, which backups it picks, the index it writes.

The drills themselves run in tests/test_generations_e2e.py; here the choice, the drift and the
index are checked on real folders and real files, fast.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from grimoire_drill.archive import named_backups
from grimoire_drill.config import GenerationChoice, build_config
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.generations_run import GenerationsRun, PassedOn, choose, plan
from grimoire_drill.limits import Limits
from grimoire_drill.report.generations_index import build_index, drift, totals_line, write_index

NIGHT = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)


def _config(**values):
    def lookup(option):
        value = values.get(option.name)
        return option.parse(value) if isinstance(value, str) and option.parse is not str else value
    return build_config(lookup, {})


def _folder(tmp_path: Path, nights: int) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    for night in range(nights):
        (folder / f"backup_{NIGHT + timedelta(days=night):%Y%m%d_%H%M%S}.tar.gz").write_bytes(b"x" * 10)
    return folder


@pytest.mark.parametrize("text, expected", [
    ("all", GenerationChoice("all")), ("3", GenerationChoice("newest", 3)),
    ("random:2", GenerationChoice("random", 2)), (" ALL ", GenerationChoice("all")),
])
def test_the_three_forms_parse(text, expected):
    assert _config(generations=text).generations == expected


@pytest.mark.parametrize("text", ["0", "foo", "random:", "random:0", "-1", "2.5", "newest:2", "random:x", "٣"])
def test_bad_values_are_one_line_naming_the_forms(text):
    with pytest.raises(HarnessError) as caught:
        _config(generations=text)
    line = caught.value.line()
    assert "--generations" in line and "random:N" in line and "\n" not in line


def test_bad_environment_value_names_the_variable():
    with pytest.raises(HarnessError, match="GRIMOIRE_DRILL_GENERATIONS"):
        build_config(lambda option: None, {"GRIMOIRE_DRILL_GENERATIONS": "lots"})


@pytest.mark.parametrize("settings, said", [
    ({"generations": "all", "then": "alembic upgrade head"}, "--then"),
    ({"generations_seed": 3}, "--generations-seed"),
    ({"generations": "2", "generations_seed": 3}, "--generations-seed"),
    ({"generations": "2", "run_id": "20261124020000abcdef"}, "--run-id"),
])
def test_contradictions_are_refused(settings, said):
    with pytest.raises(HarnessError, match=said):
        _config(**settings)


def test_choose_all_newest_and_random_oldest_first(tmp_path):
    names = named_backups(_folder(tmp_path, 6), 100, "limit")
    ids = [n.backup_id for n in names]
    assert ids == sorted(ids, reverse=True)  # newest first, as the folder is judged
    assert [n.backup_id for n in choose(names, GenerationChoice("all"), None)] == sorted(ids)
    assert [n.backup_id for n in choose(names, GenerationChoice("newest", 2), None)] == sorted(ids)[-2:]
    assert len(choose(names, GenerationChoice("newest", 50), None)) == 6
    picked = choose(names, GenerationChoice("random", 3), 42)
    assert picked == choose(names, GenerationChoice("random", 3), 42)   # one seed, one choice
    assert [n.backup_id for n in picked] == sorted(n.backup_id for n in picked) and len(picked) == 3
    assert any(choose(names, GenerationChoice("random", 3), seed) != picked for seed in range(10))


def test_an_unreadable_backup_is_chosen_not_left_out(tmp_path):
    folder = _folder(tmp_path, 3)
    (folder / "backup_20261121_020000.tar.gz").write_bytes(b"")           # zero bytes: fails its own drill
    os.symlink(tmp_path / "gone", folder / "backup_20261125_020000.tar.gz")  # dangling: the newest
    names = named_backups(folder, 100, "limit")
    assert [n.backup_id for n in names] == ["20261125_020000", "20261122_020000", "20261121_020000", "20261120_020000"]


def test_one_id_in_two_forms_is_one_generation(tmp_path):
    folder = _folder(tmp_path, 1)
    (folder / "backup_20261120_020000.tar.gz.gpg").write_bytes(b"y")
    assert [n.kind for n in named_backups(folder, 100, "limit")] == ["tar.gz"]


def test_too_many_names_are_refused_naming_the_limit(tmp_path):
    folder = _folder(tmp_path, 5)
    with pytest.raises(DrillFailure, match="limits.max_series_backups"):
        named_backups(folder, 4, Limits().name("max_series_backups"))
    with pytest.raises(HarnessError, match=r"limits.max_generations \(3\)"):
        plan(_config(backups=folder, generations="all"), Limits(max_generations=3), "20261124020000abcdef")


def test_plan_judges_each_older_backup_as_of_the_next_one(tmp_path):
    folder = _folder(tmp_path, 3)
    planned, selection = plan(_config(backups=folder, generations="random:2"), Limits(), "20261124020000abcdef")
    assert selection == {"mode": "random", "count": 2, "seed": 0xabcdef, "seed_source": "run id", "found": 3}
    every, _ = plan(_config(backups=folder, generations="all"), Limits(), "20261124020000abcdef")
    assert [p.as_of for p in every] == [NIGHT + timedelta(days=1), NIGHT + timedelta(days=2), None]
    assert [p.target for p in every] == [every[0].backup.path, every[1].backup.path, folder]  # the newest: the folder
    assert len(planned) == 2


@pytest.mark.parametrize("make, said", [
    (lambda tmp: tmp / "missing", "does not exist"),
    (lambda tmp: _folder(tmp, 1) / "backup_20261120_020000.tar.gz", "not a folder"),
    (lambda tmp: (tmp / "backup_20261120_020000").mkdir() or tmp / "backup_20261120_020000", "one extracted backup"),
])
def test_backups_must_be_a_folder_of_backups(tmp_path, make, said):
    with pytest.raises(HarnessError, match=said):
        plan(_config(backups=make(tmp_path), generations="all"), Limits(), "20261124020000abcdef")


def test_an_empty_folder_is_a_failed_drill(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DrillFailure, match="no backup_"):
        plan(_config(backups=tmp_path / "empty", generations="all"), Limits(), "20261124020000abcdef")


def test_a_secret_typed_on_the_command_line_reaches_the_child_through_a_pipe_never_on_its_argv(tmp_path, monkeypatch):
    dsn = "postgresql://grimoire:hunter2@db.example/le_grimoire"
    monkeypatch.setenv("GRIMOIRE_DRILL_GENERATIONS", "all")
    monkeypatch.setenv("GRIMOIRE_DRILL_GENERATIONS_SEED", "4")
    config = _config(backups=_folder(tmp_path, 2), generations="all", postgres_dsn=dsn)
    run = GenerationsRun(config, PassedOn({"postgres_dsn": dsn, "postgres_engine": "external", "require_real": True,
                                           "generations": "all", "max_age_hours": "30"}, keyword="not fresh"),
                         printer=lambda *a, **k: None)
    planned, _ = plan(config, run.limits, run.run_id)
    pipes = run.secret_pipes()
    try:
        assert list(pipes) == ["postgres_dsn"]
        argv = run.child_argv(planned[0], "20261124020000abcdef", None, {"postgres_dsn": f"/dev/fd/{pipes['postgres_dsn']}"})
        assert "hunter2" not in " ".join(argv)
        assert f"--postgres-dsn-file=/dev/fd/{pipes['postgres_dsn']}" in argv
        assert os.read(pipes["postgres_dsn"], 1000).decode().strip() == dsn
        assert os.read(pipes["postgres_dsn"], 1000) == b""  # written whole, closed for writing: the reader sees its end
    finally:
        for fd in pipes.values():
            os.close(fd)
    assert {"--postgres-engine=external", "--require-real", "--max-age-hours=30", "--run-id=20261124020000abcdef",
            f"--now={(NIGHT + timedelta(days=1)).isoformat()}", "-knot fresh"} <= set(argv)
    assert not any(a.startswith("--generations") for a in argv)
    env = run.child_environment()
    assert "GRIMOIRE_DRILL_GENERATIONS" not in env and "GRIMOIRE_DRILL_GENERATIONS_SEED" not in env


def _entry(name: str, verdict: str, counts, **extra):
    taken = datetime.strptime(name, "backup_%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
    return {"backup": name, "backup_id": name[7:], "taken_at": taken, "verdict": verdict, "simulated": True,
            "failed_checks": 0, "error_checks": 0, "rto_seconds": 2.0, "counts": counts, "note": None,
            "report_path": None, "summary_path": None, "run_id": "r", "exit_code": 0, "judged_as_of": None, **extra}


def test_drift_is_previous_to_this_with_percent():
    rows = drift({"mongodb": {"a": 100, "gone": 5}, "postgresql": {"users": 0}},
                 {"mongodb": {"a": 80, "new": 1}, "postgresql": {"users": 3}}, Limits())
    assert rows["mongodb"] == [
        {"name": "a", "previous": 100, "current": 80, "delta": -20, "delta_percent": -20.0},
        {"name": "gone", "previous": 5, "current": None, "delta": None, "delta_percent": None},
        {"name": "new", "previous": None, "current": 1, "delta": None, "delta_percent": None}]
    assert rows["postgresql"] == [{"name": "users", "previous": 0, "current": 3, "delta": 3, "delta_percent": None}]
    capped = drift(None, {"mongodb": {f"c{i}": i for i in range(10)}}, Limits(max_evidence_items=4))
    assert len(capped["mongodb"]) == 4 and capped["omitted"] == 6


def test_index_writes_json_and_an_escaped_self_contained_page(tmp_path):
    hostile = "<script>alert(1)</script>"
    entries = [_entry("backup_20261120_020000", "PASSED", {"mongodb": {hostile: 1}, "postgresql": {}}),
               _entry("backup_20261121_020000", "FAILED", {"mongodb": {hostile: 2}, "postgresql": {}},
                      report_path=tmp_path / "x" / "report.html")]
    now = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
    index = build_index(run_id="r1", backups="backups", selection={"mode": "all", "count": None, "seed": None,
                                                                    "seed_source": None, "found": 3},
                        started_at=now, finished_at=now, now=now, entries=entries, not_drilled=["backup_20261122_020000"],
                        interrupted=True, exit_code=130, outcome="interrupted", index_dir=tmp_path, limits=Limits())
    html_path, json_path = write_index(index, tmp_path)
    written = json.loads(json_path.read_text())
    assert written["partial"] is True and written["totals"]["FAILED"] == 1 and written["simulated"] is True
    second = written["generations"][1]
    assert second["age_hours"] == 24.0 and second["report"] == "x/report.html"
    assert second["drift"]["previous"] == "backup_20261120_020000"
    assert second["drift"]["mongodb"][0]["delta_percent"] == 100.0
    page = html_path.read_text()
    assert hostile not in page and "&lt;script&gt;" in page and "<script" not in page
    assert 'href="x/report.html"' in page and "PARTIAL" in page and "SIMULATED" in page
    assert totals_line(written) == ("2 generations: 1 PASSED, 1 FAILED (backup_20261121_020000) — partial: "
                                    "interrupted, 1 not drilled")


def test_a_drill_refuses_generations_and_takes_its_run_id_from_the_config(tmp_path):
    from grimoire_drill.plugin import DrillRun

    with pytest.raises(HarnessError, match="grimoire-drill run BACKUPS --generations"):
        DrillRun(_config(backups=_folder(tmp_path, 1), generations="all"))
    assert DrillRun(_config(backups=tmp_path / "backups", run_id="20261124020000abcdef")).run_id == "20261124020000abcdef"
    with pytest.raises(HarnessError, match="--run-id"):
        _config(run_id="../../etc")
