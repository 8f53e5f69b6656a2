"""--generations through the real CLI: a nightly series of real sample backups, local PostgreSQL,
the simulated MongoDB. Every generation is a real drill; the index is read back from disk."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.sample import CATALOGUE, write_generations

from engine_traces import LiveRun, leftovers

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")]

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
ENGINES = RUN[1:]


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> list[Path]:
    """Three clean nights, newest first (the drills only read them: each test copies the folder)."""
    return write_generations(tmp_path_factory.mktemp("series"), count=3)


@pytest.fixture
def backups(series, tmp_path) -> Path:
    folder = tmp_path / "backups"
    shutil.copytree(series[0].parent, folder)
    return folder


def _index(folder: Path) -> dict:
    return json.loads((folder / "generations.json").read_text())


def _history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_all_drills_every_night_oldest_first_each_in_its_own_run_folder(run_cli, backups, tmp_path):
    result = run_cli(*RUN, backups, "--generations", "all")
    assert result.returncode == 0, result.output
    names = sorted(path.name.removesuffix(".tar.gz") for path in backups.iterdir())
    reports = tmp_path / "reports"
    index = _index(reports / "generations" / "latest")
    assert [g["backup"] for g in index["generations"]] == names
    assert [g["verdict"] for g in index["generations"]] == ["PASSED"] * 3 and index["simulated"] is True
    assert index["outcome"] == "passed" and index["partial"] is False and index["selection"]["found"] == 3
    assert [r["archive"] for r in _history(reports / "history.jsonl")] == names  # the previous generation: drilled before
    for generation in index["generations"]:
        run_folder = reports / generation["backup_id"] / generation["run_id"]
        assert (run_folder / "MANIFEST.sha256").is_file()
        assert (reports / generation["backup_id"] / "LATEST").read_text().strip() == generation["run_id"]
        assert (reports / "generations" / "latest" / generation["report"]).resolve() == (run_folder / "report.html").resolve()
        summary = json.loads((run_folder / "summary.json").read_text())
        assert summary["attribution"]["command_line"].count("--generations") == 0
    first, second = index["generations"][:2]
    assert first["drift"]["previous"] is None and second["drift"]["previous"] == first["backup"]
    recipes = next(row for row in second["drift"]["mongodb"] if row["name"] == "legrimoire.recipes")
    assert recipes["previous"] == recipes["current"] > 0 and recipes["delta_percent"] == 0.0
    assert any(row["name"] == "users" for row in second["drift"]["postgresql"])
    assert first["judged_as_of"] == index["generations"][1]["taken_at"] and index["generations"][2]["judged_as_of"] is None
    lines = result.stdout.splitlines()
    assert [line.split("] ")[1].split(":")[0] for line in lines if line.startswith("[")] == names
    assert "3 generations: 3 PASSED" in lines and "PASSED" in (reports / "generations" / "latest" / "index.html").read_text()


def test_n_drills_the_newest_and_random_replays_its_seed(run_cli, backups, tmp_path):
    newest = sorted(path.name.removesuffix(".tar.gz") for path in backups.iterdir())[-2:]
    two = run_cli(*RUN, backups, "--generations", "2", "--report-dir", tmp_path / "two")
    assert two.returncode == 0, two.output
    assert [g["backup"] for g in _index(tmp_path / "two")["generations"]] == newest
    assert sorted(p.name for p in (tmp_path / "two").iterdir() if p.is_dir()) == newest  # one folder each
    picked = []
    for attempt in ("a", "b"):
        result = run_cli(*RUN, backups, "--generations", "random:2", "--generations-seed", "7",
                         "--report-dir", tmp_path / attempt)
        assert result.returncode == 0, result.output
        index = _index(tmp_path / attempt)
        assert index["selection"] == {"mode": "random", "count": 2, "seed": 7, "seed_source": "flag", "found": 3}
        assert "seed 7" in result.stdout
        picked.append([g["backup"] for g in index["generations"]])
    assert picked[0] == picked[1] and len(picked[0]) == 2


@pytest.mark.parametrize("plant", ["truncated-archive", "zero-bytes"])
def test_one_bad_generation_fails_the_command_and_the_others_still_run(run_cli, backups, tmp_path, plant):
    names = sorted(path.name.removesuffix(".tar.gz") for path in backups.iterdir())
    middle = backups / f"{names[1]}.tar.gz"
    if plant == "zero-bytes":
        middle.write_bytes(b"")
    else:
        CATALOGUE[plant].archive(middle)
    result = run_cli(*RUN, backups, "--generations", "all", "--report-dir", tmp_path / "r")
    assert result.returncode == 1, result.output
    index = _index(tmp_path / "r")
    assert [g["verdict"] for g in index["generations"]] == ["PASSED", "FAILED", "PASSED"]
    assert index["generations"][1]["failed_checks"] > 0 and index["outcome"] == "failed"
    assert f"3 generations: 2 PASSED, 1 FAILED ({names[1]})" in result.stdout.splitlines()
    assert names[1] in (tmp_path / "r" / "index.html").read_text()
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, said", [
    (("--generations", "0"), "--generations"),
    (("--generations", "foo"), "random:N"),
    (("--generations", "random:"), "random:N"),
    (("--generations", "all", "--then", "true"), "--then"),
    (("--generations-seed", "3"), "--generations-seed"),
])
def test_bad_usage_is_exit_2_in_one_line(run_cli, backups, tmp_path, args, said):
    result = run_cli(*RUN, backups, *args, "--report-dir", tmp_path / "r")
    assert result.returncode == 2, result.output
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.output
    assert said in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_single_archive_is_refused_and_the_environment_is_an_option_too(run_cli, backups, tmp_path):
    archive = sorted(backups.iterdir())[0]
    result = run_cli(*RUN, archive, "--generations", "all")
    assert result.returncode == 2 and "needs a folder of backups" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and str(archive) in result.stderr
    env = run_cli(*RUN, backups, env={"GRIMOIRE_DRILL_GENERATIONS": "nope"})
    assert env.returncode == 2 and "GRIMOIRE_DRILL_GENERATIONS" in env.stderr, env.output


def test_sigterm_stops_the_drill_under_way_and_writes_a_partial_index(backups, tmp_path):
    run = LiveRun(*ENGINES, backups, "--generations", "all", "--report-dir", tmp_path / "r", cwd=tmp_path)
    try:
        run.wait_for("generation 2/3")
        run.wait_for("drilling")        # the second drill is under way, its own signal handling in place
        run.signal(signal.SIGTERM)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output, run.output
    index = _index(tmp_path / "r")
    assert index["partial"] is True and index["interrupted"] is True and index["outcome"] == "interrupted"
    assert [g["verdict"] for g in index["generations"]] == ["PASSED", "INTERRUPTED"]
    assert len(index["not_drilled"]) == 1
    for generation in index["generations"]:
        assert leftovers(generation["run_id"]) == []
    assert "partial: interrupted, 1 not drilled" in "".join(run.stdout)


def test_a_narrowed_drill_says_partial_for_each_generation(run_cli, backups, tmp_path):
    result = run_cli(*RUN, backups, "--generations", "2", "-k", "archive", "--report-dir", tmp_path / "r")
    assert result.returncode == 0, result.output
    index = _index(tmp_path / "r")
    assert all(g["scope"].startswith("partial (") for g in index["generations"])
    assert sum("PASSED partial (" in line for line in result.stdout.splitlines()) == 2


def test_a_dsn_typed_on_the_command_line_reaches_each_drill_but_never_its_command_line(run_cli, backups, tmp_path):
    dsn = "postgresql://grimoire:hunter2@db.example/le_grimoire"  # not used by the local engine, but read
    result = run_cli(*RUN, backups, "--generations", "2", "--postgres-dsn", dsn, "--report-dir", tmp_path / "r")
    assert result.returncode == 0, result.output
    assert "hunter2" not in result.output
    for generation in _index(tmp_path / "r")["generations"]:
        summary = json.loads((tmp_path / "r" / generation["summary"]).read_text())
        line = summary["attribution"]["command_line"]
        assert "hunter2" not in line and "--postgres-dsn-file=/dev/fd/" in line
    assert not list(tmp_path.rglob("postgres_dsn*"))  # nothing on disk
