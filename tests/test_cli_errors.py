"""The operator at 3 a.m.: every bad input is one line and the right exit code, a run that cannot
start starts nothing, a signal at start-up is exit 130, and list/inspect speak JSON.

Real processes on real sample backups: the CLI is run as a child, its stderr read whole.
"""

from __future__ import annotations

import json
import signal
import sys
from importlib import resources
from pathlib import Path

import pytest

from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.sample.defects import DEFECTS

from engine_traces import LiveRun, leftovers

PASSPHRASE = "correct horse battery staple"
LOCAL = ("--mongo-engine", "simulated", "--postgres-engine", "local")
needs_local_postgres = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries not found")


def _one_line(result) -> str:
    """The single line on stderr (and never a traceback)."""
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def backups(sample_factory) -> Path:
    """A folder holding one clean sample backup."""
    return sample_factory().parent


@pytest.fixture(scope="module")
def encrypted(sample_factory) -> Path:
    return sample_factory(passphrase=PASSPHRASE)


# -- 1. every command, every bad input: one line, the right exit code ---------------------------

def _bad_inputs(tmp: Path, backups: Path) -> list[tuple[tuple, int, str]]:
    a_file = tmp / "a-file"
    a_file.write_text("not a folder")
    (tmp / "empty").mkdir()
    return [
        ((), 2, "grimoire-drill --help"),
        (("bogus",), 2, "invalid choice"),
        (("list", tmp / "nonexistent"), 2, "no such folder"),
        (("list", a_file), 2, "not a folder"),
        (("list", tmp / "empty"), 1, "no backup_YYYYMMDD_HHMMSS archive"),
        (("inspect", tmp / "nonexistent.tar.gz"), 2, "no such file or folder"),
        (("inspect",), 2, "grimoire-drill inspect --help"),
        (("verify", tmp / "nonexistent"), 2, "not a report folder"),
        (("sample", tmp / "out", "--defect", "bogus"), 2, "missing-index"),
        (("sample", tmp / "out", "--scale", "0"), 2, "--scale"),
        (("sample", tmp / "out", "--age-hours", "soon"), 2, "--age-hours"),
        (("sample",), 2, "grimoire-drill sample --help"),
        (("demo", "--out", a_file), 2, str(a_file)),
        (("run",), 2, "no BACKUPS given"),
        (("run", backups, "--engine", "bogus"), 2, "invalid choice"),
        (("run", backups, "--max-age-hours", "old"), 2, "--max-age-hours"),
        (("run", backups, "--pytest-args", "'-x"), 2, "--pytest-args"),
    ]


def test_every_bad_input_is_one_line_and_its_exit_code(run_cli, tmp_path, backups):
    for args, code, said in _bad_inputs(tmp_path, backups):
        result = run_cli(*args)
        assert result.returncode == code, (args, result.output)
        assert said in _one_line(result), (args, result.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / "reports").exists()


def test_a_bad_backup_given_to_inspect_is_exit_1(run_cli, sample_factory):
    result = run_cli("inspect", sample_factory("corrupt-archive"))
    assert result.returncode == 1, result.output
    assert "backup_" in _one_line(result)


def test_inspect_of_an_encrypted_backup_without_passphrase_is_exit_2(run_cli, encrypted):
    result = run_cli("inspect", encrypted, env={"GRIMOIRE_DRILL_PASSPHRASE": ""})
    assert result.returncode == 2
    assert "no passphrase" in _one_line(result)


def test_python_m_grimoire_drill_help_lists_the_exit_codes(run_cli):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "grimoire_drill", "--help"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    for code in ("0", "1", "2", "3", "130"):
        assert f"\n  {code} " in done.stdout, done.stdout
    run_help = run_cli("run", "--help").stdout
    assert "exit codes:" in run_help and "130" in run_help
    for kind in ("auto", "docker", "local", "external", "simulated"):
        assert kind in run_help.split("\n  --engine ENGINE", 1)[1].split("\n  --mongo-engine", 1)[0]


def test_sample_help_lists_every_defect_with_its_description(run_cli):
    out = " ".join(run_cli("sample", "--help").stdout.split())
    for name, description in DEFECTS.items():
        assert f"{name} {' '.join(description.split())}" in out, name


# -- 2. fail fast: a run that cannot start starts nothing and says one cause once ---------------

def _refused(run_cli, tmp_path, *args, env=None):
    """A run refused before anything starts: exit 2, one line, no engine line, nothing claimed or made."""
    temp = tmp_path / "temp"
    temp.mkdir()
    result = run_cli("run", *args, *LOCAL, "--temp-dir", temp, env=env)
    assert result.returncode == 2, result.output
    line = _one_line(result)
    assert "engine " not in result.stderr.replace(line, "")
    assert list(temp.iterdir()) == [], "a temp dir (so an engine) was made"
    assert not (tmp_path / "reports").exists(), "a report folder was claimed"
    return line


@pytest.mark.parametrize("args, said", [
    (("-k", "bad syntax("), "-k 'bad syntax(' is not a valid expression at column 5"),
    (("-k", "nosuchcheck"), "-k 'nosuchcheck' selects none of the drill's"),
    (("--pytest-args", "drills/test_archive.py::test_nosuchcheck"), "no check of the drill has this node id"),
    (("--require-real",), "--require-real"),
], ids=["bad-k", "k-selects-nothing", "unknown-node-id", "require-real-simulated"])
def test_preflight_refuses_before_starting_anything(run_cli, tmp_path, backups, args, said):
    assert said in _refused(run_cli, tmp_path, backups, *args)


def test_preflight_refuses_an_encrypted_backup_without_passphrase(run_cli, tmp_path, encrypted):
    line = _refused(run_cli, tmp_path, encrypted, env={"GRIMOIRE_DRILL_PASSPHRASE": ""})
    assert encrypted.name in line and "no passphrase" in line and "GRIMOIRE_DRILL_PASSPHRASE" in line


def test_a_missing_backup_is_a_failed_drill_that_starts_no_engine_and_says_its_cause_once(run_cli, tmp_path):
    missing = tmp_path / "backups-that-are-not-there"
    temp = tmp_path / "temp"
    temp.mkdir()
    result = run_cli("run", missing, *LOCAL, "--temp-dir", temp, "--report-dir", tmp_path / "r")
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.count("no such file or folder") == 1, result.output
    assert "engine " not in result.output and list(temp.iterdir()) == []
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["outcome"] == "failed"
    assert {engine["version"] for engine in summary["engines"].values()} == {"not started"}


def test_clip_never_cuts_a_word():
    from grimoire_drill.text import ELLIPSIS, clip

    text = "the newest backup cannot be drilled: " + "word " * 40
    for limit in range(20, len(text)):
        shown = clip(text, limit)
        assert len(shown) <= limit and shown.endswith(ELLIPSIS)
        assert text.startswith(shown[:-1]) and text[len(shown) - 1] == " ", (limit, shown)
    assert clip("x" * 50, 10) == "x" * 9 + ELLIPSIS  # one long value: cut inside it, with an ellipsis


# -- 3. Ctrl-C or SIGTERM during start-up: exit 130, nothing left --------------------------------

@needs_local_postgres
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_as_the_run_starts_exits_130_and_leaves_nothing(backups, tmp_path, signum):
    run = LiveRun(backups, *LOCAL, cwd=tmp_path)  # returns at the run's first line: pytest starts next
    try:
        run.signal(signum)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output and "interrupted" in run.output
    assert leftovers(run.run_id) == []
    for folder in (tmp_path / "reports").glob(f"*/{run.run_id}"):  # written only if collection was reached
        assert (folder / "summary.json").is_file(), f"an empty run folder was left: {folder}"


# -- 5. list --json and inspect --json -----------------------------------------------------------

def _validate(document: dict, schema_file: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(resources.files("grimoire_drill").joinpath("schemas", schema_file).read_text())
    jsonschema.Draft202012Validator(schema).validate(document)


def test_list_json_matches_its_schema_and_the_table(run_cli, tmp_path, backups):
    assert run_cli("run", backups, "-k", "archive").returncode == 0  # a partial run: "since then"
    document = json.loads(run_cli("list", backups, "--json").stdout)
    _validate(document, "list.schema.json")
    assert document["schema"] == "grimoire-drill/list@1"
    [backup] = document["backups"]
    assert backup["last_full_drill"] is None and backup["later_partial_drill"]["verdict"].startswith("PARTIAL")
    table = run_cli("list", backups).stdout
    assert backup["name"] in table and backup["last_drill_text"] in table


def test_inspect_json_matches_its_schema_and_counts_rows_per_table(run_cli, sample_factory):
    archive = sample_factory()
    result = run_cli("inspect", archive, "--json")
    assert result.returncode == 0, result.output
    document = json.loads(result.stdout)
    _validate(document, "inspect.schema.json")
    pg = document["postgresql"]
    assert pg["rows_from"] == "database.backup" and pg["rows"]["users"] > 0 and "recipes" in pg["rows"]
    text = run_cli("inspect", archive).stdout
    for table, count in pg["rows"].items():
        assert any(line.split() == [table, f"{count:,}"] for line in text.splitlines()), table
