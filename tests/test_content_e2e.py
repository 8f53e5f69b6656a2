"""End to end: content equality, dump = restored, through the real CLI, real PostgreSQL, the simulated MongoDB.

A clean sample passes every content check; a restore that changed one value (the test-only
plugin ``tests/alter_restored.py`` edits the restored copy before the checks) fails the check of
that collection or table, naming the ``_id`` or primary key; sampling says so in every message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grimoire_drill.expectations import packaged_path

pytestmark = pytest.mark.slow

RUN = ("run", "--mongo-engine", "simulated", "--postgres-engine", "local")
TESTS = Path(__file__).resolve().parent
CONTENT_CHECKS = ("consistency.mongodb_content.", "consistency.postgresql_content.",
                  "consistency.mongodb_export_content.")


def _drill(run_cli, archive: Path, report: Path, *extra: str, env: dict[str, str] | None = None):
    result = run_cli(*RUN, archive.parent, "--report-dir", report, *extra, env=env)
    summary = json.loads((report / "summary.json").read_text())
    return result, {c["id"]: c for c in summary["checks"]}


def _altered(run_cli, sample_factory, tmp_path, what: str):
    """A drill whose restored copy had one title changed (``what``: mongodb:recipes or postgresql:recipes)."""
    marker = tmp_path / "altered.json"
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "GRIMOIRE_DRILL_TEST_ALTER": what, "GRIMOIRE_DRILL_TEST_ALTERED": str(marker)}
    result, checks = _drill(run_cli, sample_factory(), tmp_path / "report", "--pytest-args", "-p alter_restored",
                            env=env)
    assert marker.is_file(), "the test plugin did not run: " + result.output[-2000:]
    return result, checks, json.loads(marker.read_text())["key"]


def test_clean_sample_passes_every_content_check(sample_factory, run_cli, tmp_path):
    result, checks = _drill(run_cli, sample_factory(), tmp_path / "report")
    assert result.returncode == 0, result.output
    content = {id_: c for id_, c in checks.items() if id_.startswith(CONTENT_CHECKS)}
    assert {"consistency.mongodb_content.recipes", "consistency.mongodb_content.ingredients",
            "consistency.mongodb_content.categories", "consistency.postgresql_content.recipes",
            "consistency.postgresql_content.users", "consistency.mongodb_export_content.recipes",
            "consistency.mongodb_export_content.ingredients"} <= set(content)
    assert all(c["status"] == "passed" for c in content.values()), {i: c["message"] for i, c in content.items()}
    recipes = content["consistency.mongodb_content.recipes"]
    assert recipes["evidence"]["dump"] == recipes["evidence"]["restored"]
    assert recipes["evidence"]["dump"]["count"] == 24 and "re-encoded" in recipes["message"]
    rows = content["consistency.postgresql_content.recipes"]["evidence"]
    assert rows["dump"] == rows["restored"] and rows["dump"]["count"] == 24


def test_a_changed_document_fails_naming_its_id(sample_factory, run_cli, tmp_path):
    result, checks, key = _altered(run_cli, sample_factory, tmp_path, "mongodb:recipes")
    assert result.returncode == 1, result.output
    check = checks["consistency.mongodb_content.recipes"]
    assert check["status"] == "failed"
    assert f"first differing document _id {key}" in check["message"], check["message"]
    assert check["evidence"]["dump"]["count"] == check["evidence"]["restored"]["count"] == 24
    assert check["evidence"]["dump"]["sha256_sum"] != check["evidence"]["restored"]["sha256_sum"]
    assert check["evidence"]["difference"]["kind"] == "changed"
    assert checks["consistency.mongodb_counts.recipes"]["status"] == "passed"   # the counts cannot see it
    others = [i for i, c in checks.items() if c["status"] not in ("passed", "off") and i != "consistency.mongodb_content.recipes"]
    assert others == []


def test_a_changed_row_fails_naming_its_primary_key(sample_factory, run_cli, tmp_path):
    result, checks, key = _altered(run_cli, sample_factory, tmp_path, "postgresql:recipes")
    assert result.returncode == 1, result.output
    check = checks["consistency.postgresql_content.recipes"]
    assert check["status"] == "failed"
    assert f"first differing row primary key id={key}" in check["message"], check["message"]
    assert check["evidence"]["key_columns"] == ["id"]
    assert checks["consistency.postgresql_counts.recipes"]["status"] == "passed"
    others = [i for i, c in checks.items() if c["status"] not in ("passed", "off") and i != "consistency.postgresql_content.recipes"]
    assert others == []


def test_an_export_whose_title_changed_fails_naming_id_and_field(sample_factory, run_cli, tmp_path):
    import bson

    archive = sample_factory("content-change")
    result, checks = _drill(run_cli, archive, tmp_path / "report")
    assert result.returncode == 1, result.output
    check = checks["consistency.mongodb_export_content.recipes"]
    assert check["status"] == "failed" and "'title'" in check["message"]
    assert check["evidence"]["first_difference"]["position"] == 1
    import tarfile
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("legrimoire/recipes.bson"))
        second = bson.decode_all(tar.extractfile(member).read())[1]
    assert repr(second["_id"]) in check["message"], check["message"]
    assert checks["consistency.mongodb_counts.recipes"]["status"] == "passed"


def test_sampling_says_sampled(sample_factory, run_cli, tmp_path):
    expectations = tmp_path / "expectations.toml"
    text = packaged_path().read_text(encoding="utf-8")
    expectations.write_text(text.replace("[content]\nsample = 1.0", "[content]\nsample = 0.5"), encoding="utf-8")
    assert "sample = 0.5" in expectations.read_text()
    result, checks = _drill(run_cli, sample_factory(), tmp_path / "report", "--expectations", expectations)
    assert result.returncode == 0, result.output
    for prefix in ("consistency.mongodb_content.", "consistency.postgresql_content."):
        sampled = [c for i, c in checks.items() if i.startswith(prefix)]
        assert sampled and all("sampled 50%" in c["message"] for c in sampled), [c["message"] for c in sampled]
    recipes = checks["consistency.mongodb_content.recipes"]["evidence"]
    assert 0 < recipes["dump"]["count"] < 24 and recipes["sample"] == 0.5
