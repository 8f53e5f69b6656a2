"""Local engines with real binaries and real processes: start, stop, fail, run side by side, get swept.

LocalPostgres runs this machine's PostgreSQL 15. LocalMongo tests need ``mongod`` on PATH and
are skipped with that reason otherwise (no MongoDB server can be installed here); its failed
start is tested with a real ``mongod`` stand-in that exits at once.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from grimoire_drill.engines.base import OWNER_FILE, make_run_dir, new_run_id, process_start
from grimoire_drill.engines.janitor import sweep_strays
from grimoire_drill.engines.local_mongo import LocalMongo, find_mongod
from grimoire_drill.engines.local_postgres import LocalPostgres, find_bindir
from grimoire_drill.errors import HarnessError

from engine_traces import assert_cancel_ends_a_running_tool, run_processes

pytestmark = pytest.mark.skipif(find_bindir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) not found")

ORPHAN_SCRIPT = """
import sys
from pathlib import Path
from grimoire_drill.engines.local_postgres import LocalPostgres
pg = LocalPostgres(run_id=sys.argv[1], temp_root=Path(sys.argv[2])).__enter__()
print(pg.data_dir, flush=True)
sys.stdin.read()  # hold the server until told to go (or killed)
"""


@pytest.fixture
def pg_root():
    """A temp root the ``postgres`` OS user can traverse (pytest's pg_root is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="grimoire-drill-test-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _run_dirs(run_id: str, *roots: Path) -> list[Path]:
    return [path for root in (Path(tempfile.gettempdir()), *roots) for path in root.glob(f"gd-{run_id}*")]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _postmaster(pg: LocalPostgres) -> int:
    return int((pg.data_dir / "postmaster.pid").read_text().split()[0])


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


# -- LocalPostgres lifecycle -------------------------------------------------------------------

def test_start_and_stop_leave_no_process_port_or_dir(pg_root):
    run_id = new_run_id()
    with LocalPostgres(run_id=run_id, temp_root=pg_root) as pg:
        base, port, postmaster = pg.base_dir, pg.port, _postmaster(pg)
        assert base.name.startswith(f"gd-{run_id}-pg-") and (base / OWNER_FILE).is_file()
        assert _listening(port)
        with psycopg.connect(pg.conninfo("postgres")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        environ = Path(f"/proc/{postmaster}/environ").read_bytes()
        assert f"GRIMOIRE_DRILL_RUN_ID={run_id}".encode() in environ
        assert f"GRIMOIRE_DRILL_OWNER={os.getpid()}:".encode() in environ
    assert not base.exists()
    assert process_start(postmaster) is None
    assert not _listening(port)
    assert run_processes(run_id) == []
    assert _run_dirs(run_id, pg_root) == []
    with pytest.raises(HarnessError, match="not running"):
        pg.conninfo("postgres")  # a stopped engine says so (no AssertionError, no stale socket)


def _fake_bindir(pg_root: Path, postgres_script: str | None, initdb_script: str | None) -> Path:
    """A copy of the real bindir with ``postgres`` and/or ``initdb`` replaced by failing scripts.

    Copies, not symlinks: PostgreSQL programs find each other next to their resolved path. Not
    named ``bin``: PostgreSQL would then look for its libraries in ``../lib`` instead of the real ones.
    """
    real = find_bindir()
    bindir = pg_root / "pgbin"
    bindir.mkdir()
    for name in ("initdb", "pg_ctl", "postgres", "pg_restore", "psql"):
        shutil.copy2(real / name, bindir / name)
    for name, script in (("postgres", postgres_script), ("initdb", initdb_script)):
        if script is not None:
            if name == "postgres":
                (bindir / name).rename(bindir / "postgres.real")
            (bindir / name).write_text(script)
            (bindir / name).chmod(0o755)
    bindir.chmod(0o755)  # the server user runs initdb and postgres from here
    return bindir


def test_failed_initdb_raises_harness_error_and_leaves_nothing(pg_root):
    bindir = _fake_bindir(pg_root, None, "#!/bin/sh\necho 'initdb: error: could not create directory: No space left on device' >&2\nexit 1\n")
    run_id = new_run_id()
    with pytest.raises(HarnessError) as caught:
        with LocalPostgres(run_id=run_id, temp_root=pg_root, bindir=bindir):
            pytest.fail("must not start")
    assert "initdb failed" in str(caught.value) and "No space left on device" in str(caught.value)
    assert "\n" not in caught.value.line()
    assert _run_dirs(run_id, pg_root) == [] and run_processes(run_id) == []


def test_server_that_refuses_to_start_raises_with_its_words_and_leaves_nothing(pg_root):
    """Real initdb, then a server that exits at once: pg_ctl -w sees it, three attempts, then a clear error."""
    refuse = ('#!/bin/sh\ncase " $* " in\n'
              '  *" --boot "*|*" --check "*|*" --single "*|*" -V "*|*" --version "*|*" -C "*|*" --describe-config "*)'
              ' exec "$(dirname "$0")/postgres.real" "$@";;\nesac\n'
              'echo "FATAL:  could not create shared memory segment: test refusal" >&2\nexit 1\n')
    bindir = _fake_bindir(pg_root, refuse, None)
    run_id = new_run_id()
    with pytest.raises(HarnessError) as caught:
        with LocalPostgres(run_id=run_id, temp_root=pg_root, bindir=bindir):
            pytest.fail("must not start")
    message = str(caught.value)
    assert "would not start" in message and "could not create shared memory segment: test refusal" in message
    assert message.count("test refusal") == 1
    assert _run_dirs(run_id, pg_root) == [] and run_processes(run_id) == []


def test_two_clusters_at_once_get_their_own_port_and_dir_and_both_work(pg_root):
    run_a, run_b = new_run_id(), new_run_id()
    with LocalPostgres(run_id=run_a, temp_root=pg_root) as a, LocalPostgres(run_id=run_b, temp_root=pg_root) as b:
        assert a.port != b.port and a.base_dir != b.base_dir and a.socket_dir != b.socket_dir
        for pg, name in ((a, "alpha"), (b, "beta")):
            pg.create_database("le_grimoire")
            with psycopg.connect(pg.conninfo("le_grimoire"), autocommit=True) as conn:
                conn.execute("CREATE TABLE marker (name text)")
                conn.execute("INSERT INTO marker VALUES (%s)", (name,))
        for pg, name in ((a, "alpha"), (b, "beta")):
            with psycopg.connect(pg.conninfo("le_grimoire")) as conn:
                assert conn.execute("SELECT name FROM marker").fetchall() == [(name,)]
            dump = pg_root / f"{name}.backup"
            result = pg.run_tool("pg_dump", ["-F", "c", "-f", "{out}", "le_grimoire"], {"out": dump})
            assert result.ok, result.stderr
            assert dump.stat().st_size > 0
    assert run_processes(run_a) == [] and run_processes(run_b) == []
    assert _run_dirs(run_a, pg_root) == [] and _run_dirs(run_b, pg_root) == []


def test_cancel_ends_a_running_tool_and_refuses_new_ones(pg_root):
    """What an interrupted drill needs: a restore thread inside a tool returns now, not when the tool is done."""
    with LocalPostgres(run_id=new_run_id(), temp_root=pg_root) as pg:
        assert_cancel_ends_a_running_tool(pg)


def test_tools_carry_the_run_and_owner_tags(pg_root):
    run_id = new_run_id()
    with LocalPostgres(run_id=run_id, temp_root=pg_root) as pg:
        result = pg.run_tool("psql", ["-d", "postgres", "-At", "-c", "SELECT 1"], {})
        assert result.ok and result.stdout.strip() == "1"
        env_dump = pg.run_tool("psql", ["-d", "postgres", "-At", "-c", r"\! env"], {})
    assert f"GRIMOIRE_DRILL_RUN_ID={run_id}" in env_dump.stdout
    assert f"GRIMOIRE_DRILL_OWNER={os.getpid()}:" in env_dump.stdout


# -- the janitor, on local servers ---------------------------------------------------------------

SWEEP_SCENARIO = """
import json, subprocess, sys
from pathlib import Path
from grimoire_drill.engines.base import make_run_dir, new_run_id, process_start
from grimoire_drill.engines.janitor import sweep_strays

root, orphan_script = Path(sys.argv[1]), sys.argv[2]
run_id = new_run_id()
session_dir = make_run_dir(run_id, "session", root)  # as a drill's own temp dir
session_dir.chmod(0o711)
owner = subprocess.Popen([sys.executable, "-c", orphan_script, run_id, str(session_dir)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
data_dir = Path(owner.stdout.readline().strip())
postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
facts = {"run_id": run_id, "session_dir": str(session_dir), "postmaster": postmaster}
facts["swept_while_owner_runs"] = [line for line in sweep_strays(new_run_id()) if run_id in line]
owner.kill()
owner.wait()
facts["alive_after_owner_killed"] = process_start(postmaster) is not None
facts["swept_as_current_run"] = [line for line in sweep_strays(run_id) if run_id in line]
facts["alive_after_current_sweep"] = process_start(postmaster) is not None
facts["removed"] = sweep_strays(new_run_id())
facts["alive_after_sweep"] = process_start(postmaster) is not None
facts["session_dir_after_sweep"] = session_dir.exists()
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def sweep_facts():
    """A killed owner's cluster and three sweeps, all inside a private pid namespace.

    Other drills run on this machine meanwhile (other sessions' tests); their janitors would
    remove our deliberate stray first. Inside its own pid namespace (own /proc) the stray is ours
    alone, and ending the namespace ends whatever a failure would leave.
    """
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare (util-linux) for a private pid namespace")
    root = Path(tempfile.mkdtemp(prefix="grimoire-drill-test-"))
    root.chmod(0o711)
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-c",
                               SWEEP_SCENARIO, str(root), ORPHAN_SCRIPT], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert done.returncode == 0, done.stderr
        yield json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_janitor_stops_a_killed_owners_server_and_removes_its_dirs(sweep_facts):
    assert sweep_facts["alive_after_owner_killed"], "a SIGKILLed owner leaves its server running"
    removed = sweep_facts["removed"]
    assert f"postgres process {sweep_facts['postmaster']} of run {sweep_facts['run_id']}" in removed
    assert f"temp dir {sweep_facts['session_dir']}" in removed
    assert not sweep_facts["alive_after_sweep"] and not sweep_facts["session_dir_after_sweep"]


def test_janitor_keeps_the_server_of_a_live_owner_and_the_current_run(sweep_facts):
    assert sweep_facts["swept_while_owner_runs"] == []
    assert sweep_facts["swept_as_current_run"] == [] and sweep_facts["alive_after_current_sweep"]


def test_janitor_removes_run_dirs_whose_owner_is_gone_only(pg_root):
    dead, alive, unmarked = new_run_id(), new_run_id(), new_run_id()
    dead_dir = make_run_dir(dead, "session", pg_root)
    (dead_dir / OWNER_FILE).write_text(f"{_dead_pid()}:1\n")
    nested = pg_root / f"gd-{dead}-outer"  # a session dir without a marker, holding an engine dir with one
    nested.mkdir()
    inner = make_run_dir(dead, "pg", nested)
    (inner / OWNER_FILE).write_text(f"{_dead_pid()}:1\n")
    alive_dir = make_run_dir(alive, "session", pg_root)
    unmarked_dir = pg_root / f"gd-{unmarked}-x"
    unmarked_dir.mkdir()
    elsewhere = make_run_dir(new_run_id(), "session", pg_root)  # a drill in another pid namespace (a container)
    (elsewhere / OWNER_FILE).write_text(f"{_dead_pid()}:1:1\n")
    other = pg_root / "gd-not-a-run-id"
    other.mkdir()
    removed = sweep_strays(new_run_id(), temp_roots=[pg_root])
    assert f"temp dir {dead_dir}" in removed and f"temp dir {nested}" in removed
    assert not dead_dir.exists() and not nested.exists()
    assert alive_dir.is_dir() and unmarked_dir.is_dir() and other.is_dir() and elsewhere.is_dir()


# -- LocalMongo ----------------------------------------------------------------------------------

def test_local_mongo_start_failure_is_a_harness_error_and_leaves_nothing(pg_root, monkeypatch):
    """A real ``mongod`` stand-in that exits at once: the engine says why and removes its dir."""
    fake = pg_root / "bin"
    fake.mkdir()
    (fake / "mongod").write_text("#!/bin/sh\necho 'Fatal assertion: test mongod cannot start'\nexit 14\n")
    (fake / "mongod").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    run_id = new_run_id()
    with pytest.raises(HarnessError) as caught:
        with LocalMongo(run_id=run_id, temp_root=pg_root):
            pytest.fail("must not start")
    assert "exited with code 14" in str(caught.value) and "test mongod cannot start" in str(caught.value)
    assert _run_dirs(run_id, pg_root) == [] and run_processes(run_id) == []


@pytest.mark.skipif(find_mongod() is None, reason="no mongod on PATH (no MongoDB server can be installed here)")
def test_local_mongo_start_stop_leaves_nothing(pg_root):
    run_id = new_run_id()
    with LocalMongo(run_id=run_id, temp_root=pg_root) as mongo:
        base, port = mongo.base_dir, mongo.port
        mongo.client()["legrimoire"]["recipes"].insert_one({"title": "Tourtière"})
        assert mongo.client()["legrimoire"]["recipes"].count_documents({}) == 1
        assert run_processes(run_id)
    assert not base.exists() and not _listening(port)
    assert run_processes(run_id) == [] and _run_dirs(run_id, pg_root) == []


@pytest.mark.skipif(find_mongod() is None, reason="no mongod on PATH (no MongoDB server can be installed here)")
def test_two_local_mongods_at_once(pg_root):
    with LocalMongo(run_id=new_run_id(), temp_root=pg_root) as a, LocalMongo(run_id=new_run_id(),
                                                                              temp_root=pg_root) as b:
        assert a.port != b.port and a.base_dir != b.base_dir
        a.client()["x"]["y"].insert_one({"n": 1})
        assert b.client()["x"]["y"].count_documents({}) == 0
