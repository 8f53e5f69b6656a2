"""A dump cannot fill the scratch server's disk: past limits.max_restored_ratio the restore is stopped.

The hostile dump is plain SQL that makes data out of nothing (a loop of INSERT ... generate_series);
the run's expectations lower the ceiling so a few tens of megabytes are enough to trip it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from grimoire_drill.engines.local_postgres import find_bindir
from grimoire_drill.expectations import packaged_path

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local", "--min-size-kb", "1")
FLOOR = 24 * 1024 * 1024   # a fresh database is ~8 MB; the clean sample well under this


def _expectations(tmp_path: Path, ratio: float, floor: int) -> Path:
    text = packaged_path().read_text()
    text, one = re.subn(r"(?m)^max_restored_ratio = \S+", f"max_restored_ratio = {ratio}", text)
    text, two = re.subn(r"(?m)^restored_floor_bytes = \S+", f"restored_floor_bytes = {floor}", text)
    assert one == two == 1
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


def _with_plain(clean_tree: Path, work: Path, extra_sql: str) -> Path:
    tree = work / clean_tree.name
    shutil.copytree(clean_tree, tree)
    postgres = tree / "postgresql"
    text = (postgres / "database.sql").read_text()
    (postgres / "database.backup").unlink()
    (postgres / "database.sql").write_text(text + extra_sql)
    return tree


def test_a_dump_that_makes_data_out_of_nothing_is_stopped_at_the_ceiling(clean_tree, tmp_path, run_cli):
    # 400 statements of ~8 MB each: 3 GB if nothing stopped them
    bomb = "CREATE TABLE public.filler (pad text);\n" + (
        "INSERT INTO public.filler SELECT repeat('x', 800) FROM generate_series(1, 10000);\n" * 400)
    tree = _with_plain(clean_tree, tmp_path, bomb)
    result = run_cli(*RUN, tree, "--report-dir", tmp_path / "report",
                     "--expectations", _expectations(tmp_path, 1.0, FLOOR))
    assert result.returncode == 1, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    restore = next(c for c in summary["checks"] if c["id"] == "postgresql.restore")
    assert restore["status"] == "failed"
    assert "limits.max_restored_ratio" in restore["message"] and "was stopped" in restore["message"], restore
    grew = int(re.search(r"grew to ([\d,]+) bytes", restore["message"]).group(1).replace(",", ""))
    assert FLOOR < grew < 20 * FLOOR, restore["message"]    # stopped near the ceiling, far from 3 GB
    for name in ("report.html", "junit.xml", "drill.prom"):
        assert (tmp_path / "report" / name).is_file()


def test_a_clean_backup_stays_under_the_ceiling_and_says_how_big_it_grew(clean_tree, tmp_path, run_cli):
    tree = _with_plain(clean_tree, tmp_path, "")
    result = run_cli(*RUN, tree, "--report-dir", tmp_path / "report",
                     "--expectations", _expectations(tmp_path, 1.0, FLOOR))
    assert result.returncode == 0, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    phase = next(p for p in summary["phases"] if p["name"] == "restore_postgresql")
    assert 0 < phase["detail"]["restored_bytes_seen"] <= FLOOR
