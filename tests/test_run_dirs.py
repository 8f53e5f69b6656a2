"""Run folders on a real file system: latest, pruning, a busy --report-dir, and node-id selection."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from grimoire_drill.check_selection import split_narrowing_args
from grimoire_drill.report.run_dirs import (
    claim_explicit_folder,
    claim_run_folder,
    latest_run_id,
    prune_runs,
    publish_latest,
)

RUN_IDS = [f"2026112403{minute:02d}00abcdef" for minute in range(6)]


def _runs(backup_dir: Path) -> set[str]:
    return {p.name for p in backup_dir.iterdir() if p.is_dir() and not p.is_symlink()}


def test_latest_is_a_symlink_and_a_pointer_file_replaced_in_one_step(tmp_path):
    backup_dir = tmp_path / "20261124_020000"
    for run_id in RUN_IDS[:2]:
        claim_run_folder(tmp_path, "20261124_020000", run_id).release()
    publish_latest(backup_dir, RUN_IDS[0])
    publish_latest(backup_dir, RUN_IDS[1])
    assert os.readlink(backup_dir / "latest") == RUN_IDS[1]  # relative: the folder can be moved or archived
    assert (backup_dir / "LATEST").read_text() == RUN_IDS[1] + "\n"
    assert latest_run_id(backup_dir) == RUN_IDS[1]
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted([".lock", "LATEST", *RUN_IDS[:2], "latest"])


def test_without_a_symlink_latest_still_names_the_run(tmp_path):
    backup_dir = tmp_path / "b"
    (backup_dir / "latest").mkdir(parents=True)  # something that is not our symlink sits there
    publish_latest(backup_dir, RUN_IDS[3])
    assert (backup_dir / "latest").is_dir() and not (backup_dir / "latest").is_symlink()
    assert latest_run_id(backup_dir) == RUN_IDS[3]
    assert not [p for p in backup_dir.iterdir() if p.name.startswith(".latest")]


def test_pruning_keeps_the_newest_latest_and_running_folders(tmp_path):
    backup_dir = tmp_path / "b"
    for run_id in RUN_IDS:
        claim_run_folder(tmp_path, "b", run_id).release()
    (backup_dir / "notes").mkdir()  # not a run folder: never touched
    publish_latest(backup_dir, RUN_IDS[0])
    running = claim_run_folder(tmp_path, "b", RUN_IDS[1])  # a drill still writing there
    try:
        removed = prune_runs(backup_dir, 2, protect={RUN_IDS[5]})
    finally:
        running.release()
    assert sorted(p.name for p in removed) == RUN_IDS[2:4]
    assert _runs(backup_dir) == {RUN_IDS[0], RUN_IDS[1], RUN_IDS[4], RUN_IDS[5], "notes"}


def test_a_busy_report_dir_is_waited_for_then_taken_beside(tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "summary.json").write_text("{}")
    said: list[str] = []
    with open(report / ".lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        folder = claim_explicit_folder(report, RUN_IDS[0], wait_s=0.3, wait_limit="limits.x (0.3) s", say=said.append)
    try:
        assert folder.path == tmp_path / f"report.{RUN_IDS[0]}"
        assert said[0].startswith(f"report dir {report} is in use by another drill: waiting up to limits.x (0.3) s")
        assert (report / "summary.json").read_text() == "{}"  # the other run's outputs are left alone
    finally:
        folder.release()
    (report / "MANIFEST.sha256.asc").write_text("a signature of the older run's manifest")
    free = claim_explicit_folder(report, RUN_IDS[1], wait_s=0.3, wait_limit="-", say=said.append)
    free.release()
    assert free.path == report  # no output of an older run is left, so none can be stamped or vouched for
    assert not (report / "summary.json").exists() and not (report / "MANIFEST.sha256.asc").exists()


def test_node_ids_and_files_are_collected_as_their_folder_and_kept_as_a_selection(tmp_path):
    drills = tmp_path / "drills"
    drills.mkdir()
    (drills / "test_archive.py").write_text("")
    collect, selectors = split_narrowing_args(
        [str(drills), "drills/test_archive.py::test_backup_is_fresh", "drills/test_archive.py", "missing.py::x"],
        tmp_path)
    assert collect == [str(drills.resolve()), "missing.py::x"]  # what is not there is left for pytest to refuse
    assert [(s.text, s.names) for s in selectors] == [
        ("test_archive.py::test_backup_is_fresh", ("test_backup_is_fresh",)), ("test_archive.py", ())]


@pytest.mark.parametrize("nodeid, selector, selected", [
    ("test_archive.py::test_backup_is_fresh", "test_backup_is_fresh", True),
    ("test_mongodb.py::test_index[recipes.created_at_-1]", "test_index", True),
    ("test_mongodb.py::test_index[recipes.created_at_-1]", "test_index[recipes.created_at_-1]", True),
    ("test_mongodb.py::test_index[recipes.created_at_-1]", "test_index[other]", False),
    ("test_archive.py::test_backup_is_fresh_enough", "test_backup_is_fresh", False),
])
def test_a_node_id_selects_its_check_and_its_parametrisations(tmp_path, nodeid, selector, selected):
    module = tmp_path / nodeid.split("::")[0]
    module.write_text("")
    (target,) = split_narrowing_args([f"{module.name}::{selector}"], tmp_path)[1]

    class Item:
        path = module
    Item.nodeid = nodeid
    assert target.matches(Item()) is selected


def test_ignore_options_become_a_deselection_so_the_ignored_checks_are_still_counted(tmp_path):
    from types import SimpleNamespace

    from grimoire_drill.check_selection import take_ignore_options

    drills = tmp_path / "drills"
    drills.mkdir()
    for name in ("test_archive.py", "test_mongodb.py"):
        (drills / name).write_text("")
    option = SimpleNamespace(ignore=[str(drills / "test_mongodb.py")], ignore_glob=[str(drills / "*_archive.py")])
    config = SimpleNamespace(option=option, getoption=lambda name, default=None: getattr(option, name, default))
    rules = take_ignore_options(config)
    assert option.ignore == [] and option.ignore_glob == []  # collection now sees every check
    items = {name: SimpleNamespace(path=drills / name, nodeid=f"{name}::test_x")
             for name in ("test_archive.py", "test_mongodb.py")}
    assert [rule.matches(items["test_mongodb.py"]) for rule in rules] == [True, False]
    assert [rule.matches(items["test_archive.py"]) for rule in rules] == [False, True]
    assert rules[0].text == f"--ignore {drills / 'test_mongodb.py'}"
