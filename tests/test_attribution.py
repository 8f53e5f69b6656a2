"""What identifies the build in ``summary.attribution``: a checkout's commit and dirty flag, or an
installed wheel's RECORD hash. Both from real copies of the package, imported in a child process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IDENTITY = "import json; from grimoire_drill.attribution import build_identity; print(json.dumps(build_identity()))"


def _identity(pythonpath: Path, cwd: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    done = subprocess.run([sys.executable, "-c", IDENTITY], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_a_checkout_is_identified_by_its_commit_and_dirty_flag(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, capture_output=True)
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    assert _identity(clone, tmp_path) == {"source": "git", "commit": head, "dirty": False}
    with (clone / "grimoire_drill" / "text.py").open("a") as handle:
        handle.write("# local edit\n")
    assert _identity(clone, tmp_path) == {"source": "git", "commit": head, "dirty": True}


def test_an_untracked_copy_is_not_taken_for_the_checkout_around_it(tmp_path):
    """A package copied into a folder of some other repository (a venv inside a project) is not that repo's commit."""
    outer = tmp_path / "project"
    outer.mkdir()
    subprocess.run(["git", "init", "-q", str(outer)], check=True, capture_output=True)
    shutil.copytree(ROOT / "grimoire_drill", outer / "site" / "grimoire_drill")
    assert _identity(outer / "site", tmp_path)["source"] != "git"


def test_an_off_site_url_is_recorded_without_its_user_or_query():
    from grimoire_drill.attribution import redact_argv

    assert redact_argv(["run", "sftp://backup@vault.example:2222/srv/b/", "s3://bucket/p/?versionId=x"]) == [
        "run", "sftp://vault.example:2222/srv/b/", "s3://bucket/p/"]
