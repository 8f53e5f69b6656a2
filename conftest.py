"""Fixtures shared by tests/: generated sample backups and a way to run the real CLI.

No drill logic here: the drill lives in drills/, the harness in grimoire_drill/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def run_cli(tmp_path):
    """Run ``grimoire-drill`` as a real process in a scratch working dir; returns CliResult."""
    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
        full_env = dict(os.environ)
        full_env.update({"TESTCONTAINERS_RYUK_DISABLED": "true", "PYTHONUNBUFFERED": "1"})
        full_env.update(env or {})
        done = subprocess.run([sys.executable, "-m", "grimoire_drill.cli", *map(str, args)],
                              cwd=cwd if cwd is not None else tmp_path, env=full_env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        return CliResult(done.returncode, done.stdout, done.stderr)
    return run


@pytest.fixture(scope="session")
def sample_factory(tmp_path_factory):
    """Build (and cache per arguments) generated sample backups: clean or with one defect."""
    from grimoire_drill.sample import write_sample

    cache: dict[tuple, Path] = {}

    def make(defect: str | None = None, *, hours_old: float = 1.0, **kw) -> Path:
        key = (defect, hours_old, tuple(sorted(kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"backups-{defect or 'clean'}")
            cache[key] = write_sample(out, when=datetime.now(timezone.utc) - timedelta(hours=hours_old),
                                      defect=defect, **kw)
        return cache[key]
    return make


@pytest.fixture(scope="session")
def clean_tree(sample_factory, tmp_path_factory) -> Path:
    """The clean sample, extracted: ``backup_<id>/`` with both PostgreSQL dumps (tests copy it, never edit it)."""
    import tarfile

    out = tmp_path_factory.mktemp("clean-tree")
    with tarfile.open(sample_factory()) as tar:
        tar.extractall(out, filter="data")
    return next(out.glob("backup_*"))


@pytest.fixture(scope="session")
def local_postgres_image() -> str:
    """The PostgreSQL image the docker tests use (built from this machine's files), or a skip saying why."""
    from grimoire_drill.engines.docker import docker_status

    ok, why = docker_status()
    if not ok:
        pytest.skip(why)
    import docker
    from docker.errors import ImageNotFound

    image = os.environ.get("GRIMOIRE_DRILL_POSTGRES_IMAGE", "grimoire-drill/postgres:15-local")
    client = docker.from_env()
    try:
        client.images.get(image)
    except ImageNotFound:
        pytest.skip(f"image {image} is not present here (scripts/build-postgres-image.sh builds it)")
    finally:
        client.close()
    return image
