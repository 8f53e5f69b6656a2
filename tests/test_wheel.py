"""The drill ships inside the wheel: drills/ and expectations.toml run from an installed copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "No module named" in done.stderr:
        pytest.skip(f"cannot build a wheel here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    wheel = next(out.glob("grimoire_drill-*.whl"))
    target = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(target)
    for needed in ("grimoire_drill/drills/expectations.toml", "grimoire_drill/drills/test_mongodb.py",
                   "grimoire_drill/drills/conftest.py",
                   "grimoire_drill/schemas/summary.schema.json", "grimoire_drill/plugin.py"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    assert not any(name.startswith("drills/") for name in names), "the wheel must not add a generic top-level drills package"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = (target / entry_points).read_text()
    assert "grimoire-drill = grimoire_drill.__main__:main" in text and "[pytest11]" in text
    return target


def test_a_drill_runs_from_the_wheel_not_the_checkout(unpacked_wheel, sample_factory, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(unpacked_wheel), TESTCONTAINERS_RYUK_DISABLED="true")
    where = subprocess.run([sys.executable, "-c", "import grimoire_drill.drills as d; print(d.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(unpacked_wheel)), where.stdout + where.stderr
    done = subprocess.run([sys.executable, "-m", "grimoire_drill.cli", "run", "--mongo-engine", "simulated",
                           "--postgres-engine", "local", str(sample_factory()), "--report-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["totals"]["passed"] >= 40


def test_an_installed_wheel_is_identified_by_its_record_hash(unpacked_wheel, tmp_path):
    import hashlib

    env = dict(os.environ, PYTHONPATH=str(unpacked_wheel))
    code = "import json; from grimoire_drill.attribution import build_identity; print(json.dumps(build_identity()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60, check=True)
    build = json.loads(done.stdout)
    record = next(unpacked_wheel.glob("grimoire_drill-*.dist-info/RECORD"))
    assert build["source"] == "distribution"
    assert build["record_sha256"] == hashlib.sha256(record.read_bytes()).hexdigest()
