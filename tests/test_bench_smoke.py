"""scripts/bench.py end to end on a tiny archive: every field of bench.json is there and sane.

No timing is asserted (timings belong to the benchmark itself, not to the test suite): only that
each contender really ran, measured positive times, and that the derived numbers follow from the raw ones.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "scripts" / "bench.py"

MACHINE_FIELDS = {"date", "cpu_model", "cores", "ram_mb", "kernel", "python", "postgresql", "tar", "mongomock",
                  "pymongo", "bson_c_extension", "git_commit", "load_average"}
RESULT_FIELDS = {"size", "size_bytes_target", "scale", "archive", "archive_bytes", "generation_s", "warm_read_s",
                 "jobs", "repeat", "archive_pairs", "load_average", "tar", "bare", "drill", "read", "derived", "runs", "targets"}
BARE_FIELDS = {"sha256sum_s", "tar_s", "postgres_start_s", "pg_restore_s", "rows", "mongo_load_s", "mongo",
               "mongo_peak_rss_bytes", "total_s"}
DRILL_FIELDS = {"timed_out", "total_s", "rto_s", "phases_s", "phase_status", "documents", "rows", "uploads_files",
                "checks", "peak_rss_bytes", "rusage_maxrss_bytes", "engines", "stuck_in", "rss_timeline"}
DERIVED_FIELDS = {"drill_vs_bare", "drill_vs_bare_is_lower_bound", "archive_vs_tar", "checks_share", "harness_rss_mb",
                  "archive_in_drill_vs_tar", "documents_per_s", "rows_per_s", "bare_documents_per_s", "bare_rows_per_s", "drill_peak_rss_mb",
                  "simulated_store_mb"}
PHASES = {"locate", "archive", "start", "restore_mongodb", "restore_postgresql", "checks", "report"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "1MB,2MB", "--archive-pairs", "2", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def test_document_has_machine_settings_targets(bench):
    document, _ = bench
    assert document["schema"] == "grimoire-drill/bench@1"
    assert MACHINE_FIELDS <= set(document["machine"])
    assert document["machine"]["cores"] >= 1 and document["machine"]["ram_mb"] > 0
    assert "PostgreSQL" in document["machine"]["postgresql"]
    assert document["settings"]["sizes"] == ["1MB", "2MB"]
    assert set(document["targets"]) == {"drill_vs_bare", "archive_vs_tar", "checks_share", "harness_rss_mb",
                                        "growth_exponent"}
    assert document["failure"] is None
    assert document["calibration"]["bytes_per_unit"] > 0


def test_each_size_measured_all_three_contenders(bench):
    document, _ = bench
    assert [r["size"] for r in document["results"]] == ["1MB", "2MB"]
    for result in document["results"]:
        assert RESULT_FIELDS <= set(result)
        assert 0.5e6 <= result["archive_bytes"] <= 2 * result["size_bytes_target"]
        assert result["tar"]["seconds"] > 0
        assert BARE_FIELDS <= set(result["bare"])
        assert DRILL_FIELDS <= set(result["drill"])
        assert DERIVED_FIELDS <= set(result["derived"])
        assert result["drill"]["timed_out"] is False and result["drill"]["stuck_in"] is None
        assert PHASES <= set(result["drill"]["phases_s"])
        assert set(result["drill"]["phase_status"].values()) == {"ok"}
        assert result["drill"]["checks"]["failed"] == 0 and result["drill"]["checks"]["passed"] > 0


def test_bare_and_drill_restored_the_same_documents(bench):
    document, _ = bench
    for result in document["results"]:
        bare, drill = result["bare"], result["drill"]
        assert bare["mongo"]["documents"] == drill["documents"] > 0
        assert bare["mongo"]["indexes"] == 12            # init-db.sh's indexes, built by the bare load too
        assert bare["rows"] == drill["rows"] > 0             # pg_restore by hand and the drill restored the same rows
        steps = ("sha256sum_s", "tar_s", "postgres_start_s", "pg_restore_s", "mongo_load_s")
        assert math.isclose(bare["total_s"], sum(bare[s] for s in steps))


def test_memory_is_measured_and_store_separated(bench):
    document, _ = bench
    for result in document["results"]:
        drill, derived = result["drill"], result["derived"]
        assert 10e6 < drill["peak_rss_bytes"] < 10e9
        assert drill["rusage_maxrss_bytes"] > 0
        assert drill["rss_timeline"] and all(rss > 0 for _t, rss in drill["rss_timeline"])
        assert result["bare"]["mongo"]["store_rss_bytes"] >= 0
        assert math.isclose(derived["harness_rss_mb"],
                            (drill["peak_rss_bytes"] - result["bare"]["mongo"]["store_rss_bytes"]) / 1e6)


def test_derived_numbers_follow_from_raw_ones(bench):
    document, _ = bench
    for result in document["results"]:
        derived, drill = result["derived"], result["drill"]
        assert math.isclose(derived["drill_vs_bare"], drill["total_s"] / result["bare"]["total_s"])
        # tar and the archive read ran back to back, once per repeat and once per extra pair
        tars, reads = result["runs"]["tar"], result["runs"]["read"]
        assert len(tars) == len(reads) == 1 + 2
        ratios = [read["phases_s"]["archive"] / tar["seconds"] for tar, read in zip(tars, reads)]
        assert result["read"]["pair_ratios"] == pytest.approx(ratios)
        assert math.isclose(derived["archive_vs_tar"], sorted(ratios)[1])  # the median of three
        assert math.isclose(derived["archive_in_drill_vs_tar"], drill["phases_s"]["archive"] / result["tar"]["seconds"])
        # the read-only contender ran the archive checks and started no engine
        assert all(set(run["phases_s"]) >= {"archive"} and "restore_mongodb" not in run["phases_s"]
                   for run in result["runs"]["read"])
        assert math.isclose(derived["checks_share"], drill["phases_s"]["checks"] / drill["total_s"])
        assert derived["documents_per_s"] > 0 and derived["rows_per_s"] > 0
        assert set(result["targets"].values()) <= {"PASS", "FAIL"}


def test_growth_and_table(bench):
    document, stdout = bench
    [pair] = document["growth"]
    assert (pair["from"], pair["to"]) == ("1MB", "2MB")
    assert pair["verdict"] in {"PASS", "FAIL"}
    assert {"drill", "bare", "drill_phases", "steepest_phase", "steepest_phase_exponent"} <= set(pair)
    assert PHASES <= set(pair["drill_phases"])
    assert "drill/bare" in stdout and "1MB" in stdout and "2MB" in stdout and "growth 1MB -> 2MB" in stdout
    assert "cores" in stdout and "MB RAM" in stdout


def test_bad_size_is_a_usage_error():
    done = subprocess.run([sys.executable, str(BENCH), "--sizes", "ten"], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert done.returncode == 2 and "not a size" in done.stderr
