"""What the engine and cleanup tests look for: a run's live processes, what a run left, a live CLI run
to signal, and an engine that stops its tool on cancel."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest

from grimoire_drill.engines.base import RUN_LABEL, process_start
from grimoire_drill.engines.docker import docker_status
from grimoire_drill.errors import HarnessError

SLEEP_SQL = "SELECT pg_sleep(600)"
LINE_WAIT_S = 300  # an upper bound for a progress line to appear, never an assertion on speed
RUN_ID = re.compile(r"\brun (\d{14}[0-9a-f]{6})\b")


def run_processes(run_id: str) -> list[int]:
    """Live processes naming the run in their environment or command line (postgres titles carry it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or process_start(int(entry.name)) is None:
            continue
        try:
            text = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if run_id.encode() in text:
            found.append(int(entry.name))
    return found


def assert_cancel_ends_a_running_tool(pg) -> None:
    """An interrupted drill: a restore thread inside a tool returns now, and the engine starts no new tool.

    ``pg`` is a started PostgreSQL engine (local or docker): the tool runs wherever the engine runs it.
    """
    results: list = []
    worker = threading.Thread(target=lambda: results.append(pg.run_tool("psql", ["-d", "postgres", "-c", SLEEP_SQL], {})))
    worker.start()
    with psycopg.connect(pg.conninfo("postgres"), autocommit=True) as conn:
        while not conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '{SLEEP_SQL}%'").fetchone()[0]:
            conn.execute("SELECT pg_sleep(0.05)")  # the tool is inside the server now
    pg.cancel()
    worker.join(timeout=120)
    assert not worker.is_alive()
    assert results and not results[0].ok and "drill is stopping" in results[0].stderr
    with pytest.raises(HarnessError, match="stopping"):
        pg.run_tool("psql", ["-d", "postgres", "-c", "SELECT 1"], {})


def process_environ(pid: int) -> dict[str, str]:
    """The environment a live process was started with, as the kernel shows it (/proc/<pid>/environ)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def processes_holding(needles: list[str], exclude: set[int]) -> dict[int, str]:
    """pid -> where (``environ``/``cmdline``) of every live process whose environment or argv holds a
    needle, leaving out ``exclude``, this process, and forks of them that have not exec'd yet (a fork
    shows its parent's memory, so its parent's environment, until it execs)."""
    found: dict[int, str] = {}
    encoded = [needle.encode() for needle in needles]
    parents = set()
    for pid in exclude | {os.getpid()}:
        try:
            parents.add(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude | {os.getpid()}:
            continue
        try:
            if (entry / "cmdline").read_bytes() in parents:
                continue
        except OSError:
            continue
        for part in ("environ", "cmdline"):
            try:
                text = (entry / part).read_bytes()
            except OSError:
                continue
            if any(needle in text for needle in encoded):
                found[int(entry.name)] = f"{part} of {(entry / 'comm').read_text(errors='replace').strip()}"
    return found


class LeakWatch:
    """While a drill process runs: which processes it started (tagged with it as owner), and which
    processes other than it hold one of ``needles`` in their environment or argv (leaks).

    Polls /proc on a thread, so a short-lived tool may slip between two looks; a long-lived one
    (a database server) is always seen.
    """

    def __init__(self, needles: list[str]):
        self.needles = needles
        self.leaks: dict[int, str] = {}
        self.children: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, drill_pid: int) -> "LeakWatch":
        def loop() -> None:
            tag = f"{drill_pid}:".encode()
            while not self._stop.is_set():
                self.leaks.update(processes_holding(self.needles, {drill_pid}))
                for entry in Path("/proc").iterdir():
                    try:
                        environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
                        if b"GRIMOIRE_DRILL_OWNER=" + tag in environ:
                            self.children[int(entry.name)] = (entry / "comm").read_text().strip()
                    except OSError:
                        continue
                self._stop.wait(0.02)
        self._thread = threading.Thread(target=loop, name="leak-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# -- a live run and what it leaves --------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def child_of(pid: int) -> int:
    """The (single) child a launcher process starts; waits for it to appear."""
    while True:
        children = _children(pid)
        if children:
            return children[0]
        if process_start(pid) is None:
            pytest.fail(f"process {pid} ended without starting its child")
        threading.Event().wait(0.01)


def _ctrl_c_as_on_a_terminal() -> None:
    """In the child: SIGINT handled by default, as in a terminal. A test suite started in the
    background (``cmd &``, nohup) inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt: the drill would rightly ignore the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LiveRun:
    """``grimoire-drill run`` as a child process whose progress we can follow line by line.

    ``inside``: a pid namespace to run in (test_cleanup's PidNamespace: anything with a ``prefix`` argv).
    """

    def __init__(self, *args, cwd: Path, env: dict[str, str] | None = None, inside=None):
        prefix = inside.prefix if inside is not None else []
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "grimoire_drill.cli", "run", *map(str, args)], cwd=cwd,
            env={**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true", "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_as_on_a_terminal)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout, False), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.stderr, True), daemon=True)]
        for reader in self._readers:
            reader.start()
        self.cli_pid = child_of(self.process.pid) if inside is not None else self.process.pid  # nsenter forks
        self.run_id = RUN_ID.search(self.wait_for(" run ")).group(1)

    def _read(self, stream, sink: list[str], follow: bool) -> None:
        for line in stream:
            sink.append(line)
            if follow:
                self._lines.put(line)
        if follow:
            self._lines.put(None)

    def wait_for(self, text: str) -> str:
        """The first progress line (from now) containing ``text``; fails if the run ends first."""
        while True:
            try:
                line = self._lines.get(timeout=LINE_WAIT_S)
            except queue.Empty:
                pytest.fail(f"no progress line with {text!r} after {LINE_WAIT_S}s:\n{self.output}")
            if line is None:
                self.finish()
                pytest.fail(f"the run ended before {text!r}:\n{self.output}")
            if text in line:
                return line

    def signal(self, signum: int) -> None:
        if process_start(self.cli_pid) is not None:
            os.kill(self.cli_pid, signum)

    def finish(self, timeout: float = 600) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join()
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.finish()

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def leftovers(run_id: str) -> list[str]:
    """Everything of a run still on this machine: processes, containers, temp dirs."""
    found = []
    for pid in run_processes(run_id):
        try:
            found.append(f"process {pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()[:120]!r}")
        except OSError:
            continue  # it ended meanwhile
    found += [f"temp dir {path}" for path in Path(tempfile.gettempdir()).glob(f"gd-{run_id}*")]
    if docker_status()[0]:
        import docker

        client = docker.from_env()
        try:
            found += [f"container {c.name}" for c in client.containers.list(all=True,
                                                                          filters={"label": f"{RUN_LABEL}={run_id}"})]
        finally:
            client.close()
    return found
