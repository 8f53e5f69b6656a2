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
