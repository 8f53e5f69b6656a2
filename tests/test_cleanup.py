"""Cleanup is guaranteed: the real CLI, real signals, real servers and containers, then a look around.

After every outcome (pass, defect, engine that cannot start, SIGINT, SIGTERM) nothing of the
run is left: no process naming its run id (environment or title), no container with its run
label, no ``gd-<run id>*`` temp dir. A SIGKILLed run cannot clean up; the next run removes what
it left and says so. Engine choice is explained, --require-real refuses to simulate, and two
drills at once on the same backups do not collide.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grimoire_drill.engines.base import RUN_LABEL, new_run_id, process_start
from grimoire_drill.engines.docker import docker_status
from grimoire_drill.engines.janitor import sweep_strays
from grimoire_drill.engines.local_mongo import find_mongod
from grimoire_drill.engines.local_postgres import find_bindir

from engine_traces import LINE_WAIT_S, RUN_ID, LiveRun, child_of, leftovers

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")]

LOCAL = ("--mongo-engine", "simulated", "--postgres-engine", "local")
DOCKER_IMAGE = os.environ.get("GRIMOIRE_DRILL_POSTGRES_IMAGE", "grimoire-drill/postgres:15-local")
DOCKER = ("--mongo-engine", "simulated", "--postgres-engine", "docker", "--postgres-image", DOCKER_IMAGE)
BIG = 30          # sample scale at which the restore is still running when its progress line appears
LONG_MONGO_LOAD = 250  # about 70,000 documents: the MongoDB load takes seconds, so a signal sent as it starts lands mid-load


# -- a private pid namespace --------------------------------------------------------------------

class PidNamespace:
    """A private pid namespace with its own /proc: runs inside it are invisible to other drills' janitors.

    Other drills run on this machine while the tests do (other sessions' tests): their janitors
    would remove a SIGKILLed run's strays before our next run could, so our claim "the next run
    removes them and says so" needs the strays to be ours alone. Closing the namespace ends
    every process still inside it.
    """

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                                        sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
        self.init_pid = child_of(self.holder.pid)

    @property
    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-p", "-m", "--"]

    def close(self) -> None:
        self.holder.stdin.close()
        self.holder.wait()


@pytest.fixture
def namespace():
    if shutil.which("unshare") is None or shutil.which("nsenter") is None or os.geteuid() != 0:
        pytest.skip("needs root with unshare and nsenter (util-linux) for a private pid namespace")
    space = PidNamespace()
    yield space
    space.close()


@pytest.fixture(autouse=True)
def sweep_after(request):
    """A failed test must not leave a server behind for the next one: sweep runs whose owner is gone."""
    yield
    sweep_strays(new_run_id())


@pytest.fixture(scope="module")
def big_sample(sample_factory) -> Path:
    return sample_factory(scale=BIG)


def _summary(report: Path) -> dict:
    return json.loads((report / "summary.json").read_text())


# -- signals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, moment", [
    (signal.SIGINT, "restore_postgresql: loading"),
    (signal.SIGTERM, "restore_postgresql: loading"),
    (signal.SIGINT, "engine postgresql:"),  # while the server is still being started
], ids=["SIGINT-restoring", "SIGTERM-restoring", "SIGINT-starting"])
def test_signal_mid_run_exits_130_and_leaves_nothing(big_sample, tmp_path, signum, moment):
    run = LiveRun(*LOCAL, big_sample, "--report-dir", tmp_path / "report", cwd=tmp_path)
    try:
        run.wait_for(moment)
        run.signal(signum)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output, run.output
    assert "interrupted" in run.output.lower()
    assert leftovers(run.run_id) == []
    assert _summary(tmp_path / "report")["outcome"] == "error"  # an interrupted drill never passes




def test_interrupt_stops_the_restores_instead_of_waiting_for_them(sample_factory, tmp_path):
    """SIGTERM while the databases load: the MongoDB load is cut short (not run to the end), then cleaned up.

    The sample is large enough that the load outlasts the signal by seconds (at BIG it could
    finish first). PostgreSQL's pg_restore is ended the same way, by cancel(); it may finish first.
    """
    run = LiveRun(*LOCAL, sample_factory(scale=LONG_MONGO_LOAD), "--report-dir", tmp_path / "report", cwd=tmp_path)
    try:
        run.wait_for("restore_mongodb: loading")
        run.signal(signal.SIGTERM)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    loaded = [line for line in run.stderr if "documents via native" in line]
    assert loaded and "error(s)" in loaded[0], run.output  # collections stopped part way
    assert leftovers(run.run_id) == []


@pytest.mark.docker
def test_sigint_with_the_docker_engine_removes_the_container(big_sample, tmp_path, local_postgres_image):
    run = LiveRun(*DOCKER, big_sample, "--report-dir", tmp_path / "report", cwd=tmp_path)
    try:
        run.wait_for("restore_postgresql: loading")
        assert [item for item in leftovers(run.run_id) if item.startswith("container")], "the container runs"
        run.signal(signal.SIGINT)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    assert "Traceback" not in run.output, run.output
    assert leftovers(run.run_id) == []


def _forget(run_id: str) -> None:
    """Test cleanup after a failure: what a namespaced run left that no janitor outside may judge."""
    for path in Path(tempfile.gettempdir()).glob(f"gd-{run_id}*"):
        shutil.rmtree(path, ignore_errors=True)
    if docker_status()[0]:
        import docker

        client = docker.from_env()
        try:
            for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
                container.remove(force=True, v=True)
        finally:
            client.close()


@pytest.mark.parametrize("engine", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_sigkilled_run_leaves_strays_and_the_next_run_removes_them_and_says_so(
        big_sample, sample_factory, tmp_path, namespace, engine, request):
    if engine == "docker":
        request.getfixturevalue("local_postgres_image")
    killed = LiveRun(*(LOCAL if engine == "local" else DOCKER), big_sample, "--report-dir", tmp_path / "killed",
                     cwd=tmp_path, inside=namespace)
    try:
        try:
            killed.wait_for("restore_postgresql: loading")
        finally:
            killed.kill()
        strays = leftovers(killed.run_id)
        kind = "process" if engine == "local" else "container"
        assert any(item.startswith(kind) for item in strays), strays
        assert any(item.startswith("temp dir") for item in strays), strays
        following = LiveRun(*LOCAL, sample_factory(), "--report-dir", tmp_path / "next", cwd=tmp_path, inside=namespace)
        assert following.finish() == 0, following.output
        said = [line for line in following.stderr if "removed a stray of a killed earlier run" in line]
        if engine == "local":
            assert any("postgres process" in line and killed.run_id in line for line in said), following.output
        else:
            assert any(f"container grimoire-drill-{killed.run_id}" in line for line in said), following.output
        assert any("temp dir" in line and killed.run_id in line for line in said), following.output
        assert leftovers(killed.run_id) == []
    finally:
        _forget(killed.run_id)


def test_run_killed_before_any_engine_leaves_a_temp_dir_the_next_run_removes(big_sample, sample_factory, tmp_path,
                                                                           namespace):
    killed = LiveRun(*LOCAL, big_sample, "--report-dir", tmp_path / "killed", cwd=tmp_path, inside=namespace)
    try:
        try:
            killed.wait_for("MB read")  # extracting into its temp dir: no engine has started
        finally:
            killed.kill()
        assert any(item.startswith("temp dir") for item in leftovers(killed.run_id))
        following = LiveRun(*LOCAL, sample_factory(), "--report-dir", tmp_path / "next", cwd=tmp_path,
                            inside=namespace)
        assert following.finish() == 0, following.output
        said = [line for line in following.stderr if "removed a stray of a killed earlier run" in line]
        assert any("temp dir" in line and killed.run_id in line for line in said), following.output
        assert leftovers(killed.run_id) == []
    finally:
        _forget(killed.run_id)


# -- every outcome leaves nothing --------------------------------------------------------------

def _run_id(output: str) -> str:
    return RUN_ID.search(output).group(1)


@pytest.mark.parametrize("case, expected", [("pass", 0), ("defect", 1),
                                             pytest.param("engine-fails", 2, marks=pytest.mark.docker)])
def test_every_outcome_leaves_nothing(sample_factory, run_cli, tmp_path, case, expected):
    if case == "engine-fails":
        if not docker_status()[0]:
            pytest.skip("no Docker daemon answers: the engine that fails to start here is a docker one")
        args = (*DOCKER[:-1], "does-not-exist:1", sample_factory())
    else:
        args = (*LOCAL, sample_factory("duplicate-off-id" if case == "defect" else None))
    result = run_cli("run", *args, "--report-dir", tmp_path / "report")
    assert result.returncode == expected, result.output
    assert "Traceback" not in result.output
    if case == "engine-fails":
        assert "does-not-exist:1" in result.stdout and "did not start" in result.stdout
    assert leftovers(_run_id(result.stderr)) == []


# -- choosing engines -----------------------------------------------------------------------------

def test_require_real_without_a_real_mongodb_is_exit_2_with_a_one_line_reason(sample_factory, run_cli, tmp_path):
    if find_mongod() or os.environ.get("GRIMOIRE_DRILL_MONGO_IMAGE"):
        pytest.skip("a real MongoDB is available here")
    result = run_cli("run", "--require-real", "--postgres-engine", "local", sample_factory(), "--report-dir", tmp_path / "r")
    assert result.returncode == 2, result.output
    reasons = [line for line in result.output.splitlines() if "--require-real" in line]
    assert reasons, result.output
    assert "no real MongoDB engine available" in reasons[0] and "no mongod on PATH" in reasons[0]
    assert "SIMULATED" not in result.stdout
    # decided by the preflight, before anything started: one line, no run, no report, no engine
    assert [line for line in result.stderr.splitlines() if line.strip()] == reasons, result.stderr
    assert not (tmp_path / "r").exists() and "engine mongodb:" not in result.stderr


def test_auto_says_per_database_what_it_picked_and_why(sample_factory, run_cli, tmp_path):
    result = run_cli("run", sample_factory(), "--report-dir", tmp_path / "r")
    lines = {db: [line.split(f"engine {db}: ", 1)[1] for line in result.stderr.splitlines() if f"engine {db}: " in line]
             for db in ("mongodb", "postgresql")}
    assert len(lines["mongodb"]) == 1 and len(lines["postgresql"]) == 1, result.stderr
    engines = _summary(tmp_path / "r")["engines"]
    for db, (line,) in lines.items():
        kind, _, reason = line.partition(" (")
        assert reason.endswith(")"), line
        reason = reason[:-1]
        assert kind == engines[db]["kind"] and reason.strip() and reason == engines[db]["reason"], line
    if not find_mongod() and not os.environ.get("GRIMOIRE_DRILL_MONGO_IMAGE"):
        assert lines["mongodb"][0].startswith("simulated (no real MongoDB: docker: ")
        assert "local: no mongod on PATH" in lines["mongodb"][0]
    if engines["postgresql"]["kind"] == "local":
        assert "docker: " in lines["postgresql"][0]  # why not docker is said too
    assert result.returncode == 0, result.output
    assert leftovers(_run_id(result.stderr)) == []


# -- docker PostgreSQL, end to end -----------------------------------------------------------------

@pytest.mark.docker
def test_docker_postgres_end_to_end_records_image_and_version(sample_factory, run_cli, tmp_path, local_postgres_image):
    result = run_cli("run", *DOCKER, sample_factory(), "--report-dir", tmp_path / "r")
    assert result.returncode == 0, result.output
    engine = _summary(tmp_path / "r")["engines"]["postgresql"]
    assert engine["kind"] == "docker" and engine["image"] == local_postgres_image
    assert engine["image_id"].startswith("sha256:") or "@sha256:" in engine["image_id"]
    assert re.match(r"15\.\d+", engine["version"]), engine
    assert engine["tools"]["pg_restore"].startswith("pg_restore (PostgreSQL) 15")
    html = (tmp_path / "r" / "report.html").read_text()
    assert engine["version"] in html
    assert leftovers(_run_id(result.stderr)) == []


# -- two drills at once --------------------------------------------------------------------------

def _server_and_dirs(run_id: str) -> tuple[list[tuple[int, str | None]], list[Path]]:
    """The run's postmasters (pid, start time) and temp dirs; its tools and backends come and go meanwhile."""
    temp = Path(tempfile.gettempdir())
    pids = [int(path.read_text().split()[0])
            for path in temp.glob(f"gd-{run_id}-*/gd-{run_id}-pg-*/data/postmaster.pid")]
    return [(pid, process_start(pid)) for pid in pids], sorted(temp.glob(f"gd-{run_id}*"))


def test_two_drills_at_once_on_the_same_backups_do_not_collide(big_sample, tmp_path):
    """The first drill is frozen (SIGSTOP) mid-restore with its server up; the second runs start to end.

    Freezing makes the overlap certain instead of hoping two runs overlap in time.
    """
    backups = tmp_path / "backups"
    backups.mkdir()
    shutil.copy(big_sample, backups / big_sample.name)
    first = LiveRun(*LOCAL, backups, cwd=tmp_path)
    try:
        first.wait_for("restore_postgresql: loading")
        first.signal(signal.SIGSTOP)
        first_server = _server_and_dirs(first.run_id)
        assert first_server[0] and all(started for _pid, started in first_server[0]), "its server runs"
        second = LiveRun(*LOCAL, backups, cwd=tmp_path)
        second_code = second.finish()
        assert second_code == 0, second.output
        assert _server_and_dirs(first.run_id) == first_server, "the second drill must not touch the first one's"
        first.signal(signal.SIGCONT)
        first_code = first.finish()
    finally:
        first.signal(signal.SIGCONT)
        first.kill()
    assert first_code == 0, first.output
    backup_id = big_sample.name.removeprefix("backup_").removesuffix(".tar.gz")
    dirs = {path.name for path in (tmp_path / "reports").iterdir() if path.is_dir()}
    assert dirs == {backup_id}
    backup_dir = tmp_path / "reports" / backup_id
    runs = {path.name for path in backup_dir.iterdir() if path.is_dir() and not path.is_symlink()}
    assert runs == {first.run_id, second.run_id}  # a folder each
    for run in (first, second):
        assert _summary(backup_dir / run.run_id)["run_id"] == run.run_id
    assert (backup_dir / "latest").resolve() == (backup_dir / first.run_id).resolve()  # the last full run to finish
    assert "removed a stray" not in second.output
    history = (tmp_path / "reports" / "history.jsonl").read_text().splitlines()
    assert {json.loads(line)["run_id"] for line in history} == {first.run_id, second.run_id}
    assert leftovers(first.run_id) == [] and leftovers(second.run_id) == []


def test_sigterm_during_then_ends_the_commands_process_group_and_cleans_up(sample_factory, tmp_path):
    """The --then command runs in its own session: SIGTERM to the drill still ends it and its grandchildren."""
    pid_file = tmp_path / "grandchild.pid"
    command = f"sh -c 'sleep 600 & echo $! > {pid_file}.part; mv {pid_file}.part {pid_file}; wait'"
    run = LiveRun(*LOCAL, "--then-allow-simulated", sample_factory(), "--report-dir", tmp_path / "report",
                  "--then", command, cwd=tmp_path)
    try:
        run.wait_for("then: running")
        for _ in range(LINE_WAIT_S * 10):  # the command writes it right after starting
            if pid_file.exists():
                break
            time.sleep(0.1)
        grandchild = int(pid_file.read_text())
        run.signal(signal.SIGTERM)
        code = run.finish()
    finally:
        run.kill()
    assert code == 130, run.output
    assert process_start(grandchild) is None  # ended (or a zombie for init to reap): not running
    assert leftovers(run.run_id) == []
