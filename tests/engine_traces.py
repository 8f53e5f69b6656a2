"""What the engine and cleanup tests look for: a run's live processes, and an engine that stops its tool on cancel."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import psycopg
import pytest

from grimoire_drill.engines.base import process_start
from grimoire_drill.errors import HarnessError

SLEEP_SQL = "SELECT pg_sleep(600)"


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
