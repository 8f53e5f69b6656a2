"""Every child the drill starts gets an allow-listed environment: none of the caller's secrets.

The caller's environment is planted with a passphrase, DSNs, libpq variables, a cloud key and
a token canary (each value carrying a random marker). The tests then read what the kernel
shows of real children (``/proc/<pid>/environ`` and ``cmdline``): a started PostgreSQL's
postmaster and its workers, psql and pg_restore run by the engine, gpg while it decrypts, the
export-counting child, a docker container, and every process of a whole drill. None may hold
a planted value; each carries the run tags the janitor needs. The whole drill's reports may not
hold one either (pytest-metadata would copy CI variables such as GIT_URL into report.html).
"""

from __future__ import annotations

import ast
import dataclasses
import errno
import json
import os
import secrets
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from grimoire_drill import archive
from grimoire_drill.child_env import child_env
from grimoire_drill.engines.base import OWNER_ENV, RUN_ENV, new_run_id, run_env
from grimoire_drill.engines.janitor import tagged_processes
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.export_counts import ExportCounts

from engine_traces import LeakWatch, process_environ, processes_holding

MARK = secrets.token_hex(8)
PASSPHRASE = f"drill passphrase {MARK}"
PLANTED = {
    "PGPASSWORD": f"pgpassword-{MARK}",
    "PGHOST": f"/nonexistent/pghost-{MARK}",
    "PGUSER": f"pguser-{MARK}",
    "MONGODB_URL": f"mongodb://admin:mongo-{MARK}@mongo.example:27017/grimoire",
    "DATABASE_URL": f"postgresql://admin:database-{MARK}@db.example:5432/grimoire",
    "AWS_SECRET_ACCESS_KEY": f"aws-{MARK}",
    "AWS_SESSION_TOKEN": f"aws-session-{MARK}",           # an off-site source's credentials (s3://) ...
    "AWS_ENDPOINT_URL": f"https://s3-{MARK}.example",     # ... and where its store is
    "SSH_AUTH_SOCK": f"/nonexistent/agent-{MARK}",         # sftp://'s agent: no engine or tool may use it
    "GOOGLE_APPLICATION_CREDENTIALS": f"/secrets/gcp-{MARK}.json",
    "SOME_API_TOKEN": f"token-{MARK}",
    "GRIMOIRE_DRILL_PASSPHRASE": PASSPHRASE,
    "GRIMOIRE_DRILL_POSTGRES_DSN_UNUSED": f"postgresql://u:dsn-{MARK}@h/x",
    "LC_SMUGGLED": f"lc-{MARK}",
    "GIT_URL": f"https://ci:{MARK}@git.example/grimoire.git",  # pytest-metadata would put it in report.html
}
NEEDLES = [MARK]  # every planted value carries it

needs_pg = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")


@pytest.fixture
def planted(monkeypatch):
    """The drill's own environment holds every planted secret (children must not)."""
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    return PLANTED


def assert_clean_child(pid: int, run_id: str) -> None:
    """A child of run ``run_id``: no planted value in its environment or argv, and the run tags present."""
    env = process_environ(pid)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    name = Path(f"/proc/{pid}/comm").read_text().strip()
    leaked = sorted(key for key, value in env.items() if MARK in value or MARK in key)
    assert not leaked, f"{name} ({pid}) got {leaked} in its environment"
    assert MARK.encode() not in cmdline, f"{name} ({pid}) got a planted value in its argv"
    assert env.get(RUN_ENV) == run_id and env.get(OWNER_ENV, "").startswith(f"{os.getpid()}:"), (name, env)


def _run_processes(run_id: str, name: str | None = None) -> list[int]:
    return [process.pid for process in tagged_processes()
            if process.run_id == run_id and (name is None or process.name == name)]


def _wait_for(find, what: str):
    """Poll until ``find()`` returns something (a child starting); a generous guard, not a measurement."""
    for _ in range(6000):
        if found := find():
            return found
        threading.Event().wait(0.02)
    pytest.fail(f"{what} never showed up")


def _open_for_writing(fifo: Path, reader: threading.Thread):
    """The FIFO's write end, once its reader (a child of ``reader``'s work) has opened it; fails if
    ``reader`` ends first rather than blocking forever."""
    def attempt():
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if not reader.is_alive():
                pytest.fail(f"nobody opened {fifo.name} for reading")
            return None
    fd = _wait_for(attempt, f"a reader of {fifo.name}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb")


# -- the function ---------------------------------------------------------------------------------

def test_child_env_is_an_allow_list_plus_the_extras():
    caller = {**PLANTED, "PATH": "/usr/bin:/bin", "LANG": "fr_CA.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "America/Toronto",
              "TMPDIR": "/var/tmp", "HOME": "/root", "SSH_AUTH_SOCK": "/tmp/agent", "DOCKER_HOST": "tcp://x:2375",
              "SSH_AGENT_PID": "42", "AWS_PROFILE": "offsite", "AWS_ENDPOINT_URL": "https://s3.example"}
    env = child_env({"PGCONNECT_TIMEOUT": "10"}, environ=caller)
    assert env == {"PATH": "/usr/bin:/bin", "LANG": "fr_CA.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "America/Toronto",
                   "TMPDIR": "/var/tmp", "PGCONNECT_TIMEOUT": "10"}
    assert child_env(environ=caller, home=True)["HOME"] == "/root"
    assert child_env({"LC_ALL": "C"}, environ=caller)["LC_ALL"] == "C"  # an extra wins over ours


INHERITING = {"system", "popen", "execv", "execvp", "execl", "execlp", "spawnv", "spawnvp", "spawnl", "spawnlp",
              "posix_spawn", "posix_spawnp", "create_subprocess_exec", "create_subprocess_shell"}


def test_every_child_process_in_the_package_is_given_an_environment():
    """A subprocess call without ``env=`` (or os.system and friends) inherits the drill's whole environment."""
    package = Path(__file__).resolve().parent.parent / "grimoire_drill"
    missing = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            spawns = (node.func.attr in {"run", "Popen", "call", "check_call", "check_output"}
                      and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess")
            inherits = (node.func.attr in INHERITING and isinstance(node.func.value, ast.Name)
                        and node.func.value.id in {"os", "asyncio"})
            if (spawns and not any(keyword.arg == "env" for keyword in node.keywords)) or inherits:
                missing.append(f"{path.relative_to(package)}:{node.lineno}")
    assert not missing, f"child processes started without an explicit environment: {missing}"


# -- real children --------------------------------------------------------------------------------

@needs_pg
def test_postgres_server_and_its_tools_get_none_of_the_callers_secrets(planted, tmp_path):
    run_id = new_run_id()
    with LocalPostgres(run_id=run_id) as pg:
        postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        # (its workers inherit this environment; their /proc view of it is overwritten by their ps titles)
        assert postmaster in _run_processes(run_id)
        assert_clean_child(postmaster, run_id)

        # psql, held inside the server by a sleep while we look at it
        sleep = "SELECT pg_sleep(600)"
        results: list = []
        worker = threading.Thread(target=lambda: results.append(pg.run_tool("psql", ["-d", "postgres", "-c", sleep], {})))
        worker.start()
        psql = _wait_for(lambda: _run_processes(run_id, "psql"), "psql")[0]
        assert_clean_child(psql, run_id)
        with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as conn:
            _wait_for(lambda: conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                                           "WHERE query = %s", (sleep,)).fetchall(), "the sleeping query")
        worker.join()
        assert results and not results[0].ok and "canceling statement" in results[0].stderr

        # pg_restore, held by a dump that is a FIFO nobody writes to yet
        fifo = tmp_path / "dump.fifo"
        os.mkfifo(fifo)
        worker = threading.Thread(target=lambda: results.append(
            pg.run_tool("pg_restore", ["-d", "postgres", "{dump}"], {"dump": fifo})))
        worker.start()
        restore = _wait_for(lambda: _run_processes(run_id, "pg_restore"), "pg_restore")[0]
        assert_clean_child(restore, run_id)
        with _open_for_writing(fifo, worker):
            pass  # an empty dump: pg_restore ends (with an error)
        worker.join()
        assert not results[-1].ok


def test_gpg_decrypting_gets_the_passphrase_only_through_its_pipe(planted, sample_factory, tmp_path):
    encrypted = sample_factory(passphrase=PASSPHRASE)
    ref = archive.locate(encrypted)
    fifo = tmp_path / encrypted.name
    os.mkfifo(fifo)
    run_id = new_run_id()
    outcome: list = []

    def extract() -> None:
        try:
            outcome.append(archive.extract(dataclasses.replace(ref, path=fifo), tmp_path / "out",
                                           passphrase=PASSPHRASE, run_tags=run_env(run_id)))
        except BaseException as exc:  # noqa: BLE001 - judged below
            outcome.append(exc)

    worker = threading.Thread(target=extract)
    worker.start()
    with _open_for_writing(fifo, worker) as feed:  # gpg starts once the archive is open; it waits for our bytes
        gpg = _wait_for(lambda: _run_processes(run_id, "gpg"), "gpg")[0]
        assert_clean_child(gpg, run_id)
        assert PASSPHRASE.encode() not in Path(f"/proc/{gpg}/cmdline").read_bytes()
        feed.write(encrypted.read_bytes())
    worker.join()
    assert isinstance(outcome[0], archive.Extracted), outcome
    assert (outcome[0].root / "backup_info.txt").is_file()


def test_export_counting_child_gets_none_of_the_callers_secrets(planted, tmp_path):
    big = tmp_path / "recipes_export.json"
    big.write_text(json.dumps([{"_id": str(i), "name": f"recipe {i}"} for i in range(300_000)]))
    run_id = new_run_id()
    counts = ExportCounts([big], run_id, background_from_bytes=0).start()
    try:
        assert counts.in_background
        assert_clean_child(counts._child.pid, run_id)  # Popen returns after exec: this is the child's env
        assert counts.count(big) == 300_000
        assert counts._child.returncode == 0, "the child failed (the count came from the fallback)"
    finally:
        counts.close()


@pytest.mark.docker
def test_docker_container_environment_holds_none_of_the_callers_secrets(planted):
    from grimoire_drill.engines.docker import DockerPostgres, docker_status

    ok, why = docker_status()
    if not ok:
        pytest.skip(why)
    image = os.environ.get("GRIMOIRE_DRILL_POSTGRES_IMAGE", "grimoire-drill/postgres:15-local")
    with DockerPostgres(run_id=new_run_id(), image=image) as pg:
        env = pg._wrapped().attrs["Config"]["Env"]
        result = pg.run_tool("psql", ["-d", "postgres", "-At", "-c", r"\! env"], {})
    assert not [item for item in env if MARK in item], env
    assert result.ok and MARK not in result.stdout, result.stderr


# -- a whole drill ---------------------------------------------------------------------------------

@needs_pg
def test_drill_with_secrets_in_its_environment_passes_and_no_child_holds_them(sample_factory, tmp_path):
    import subprocess

    encrypted = sample_factory(passphrase=PASSPHRASE)
    report = tmp_path / "report"
    env = {**os.environ, **PLANTED, "TESTCONTAINERS_RYUK_DISABLED": "true", "PYTHONUNBUFFERED": "1"}
    watch = LeakWatch(NEEDLES)
    with subprocess.Popen([sys.executable, "-m", "grimoire_drill.cli", "run", str(encrypted), "--mongo-engine",
                           "simulated", "--postgres-engine", "local", "--report-dir", str(report)],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as drill:
        watch.watch(drill.pid)
        stdout, stderr = drill.communicate(timeout=600)
    watch.stop()
    assert drill.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert json.loads((report / "summary.json").read_text())["outcome"] == "passed"
    assert not watch.leaks, f"planted secrets reached {watch.leaks}"
    reports = [path for path in report.rglob("*") if path.is_file()]
    assert {"report.html", "summary.json", "junit.xml", "drill.prom"} <= {path.name for path in reports}
    assert not [path.name for path in reports if MARK in path.read_text(errors="replace")]
    assert MARK not in stdout + stderr
    assert "postgres" in watch.children.values(), f"the server was not seen: {watch.children}"
    assert not processes_holding(NEEDLES, set()), "a process of the drill outlived it"
