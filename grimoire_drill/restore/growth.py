"""A ceiling on how big a restored PostgreSQL database may grow while its dump loads.

Why: a dump is SQL, and SQL can make data out of nothing (``INSERT ... SELECT generate_series(1, 1e10)``,
a ``DEFAULT`` that repeats a string, an index over a huge expression). The sandbox role stops a dump
from reaching the server's host, but not from filling the server's disk; PostgreSQL has no quota per
database. So while the tool runs, a watcher reads ``pg_database_size`` of the scratch database, and
past the limit it ends the restore role's sessions (``pg_terminate_backend``): the restore stops at
once and the drill fails naming the limit, instead of the disk filling up under every other check.
"""

from __future__ import annotations

import threading
from types import TracebackType

import psycopg

POLL_S = 0.5
CONNECT_TIMEOUT_S = 5


def restored_size_limit(dump_bytes: int, ratio: float, floor_bytes: int) -> int:
    """The most bytes a database restored from a dump of ``dump_bytes`` may take on disk."""
    return max(int(ratio * dump_bytes), floor_bytes)


class GrowthGuard:
    """``with GrowthGuard(admin_conninfo, db, role, limit) as guard:`` run the tool; then ``guard.tripped``.

    ``tripped`` is the size seen when the limit was passed (None: it never was). The watcher uses its
    own admin connection, so it sees the size of uncommitted data too (relation files grow as rows
    are written). Anything that stops it from watching (a refused connection) leaves the restore
    unbounded but otherwise untouched (``largest`` stays 0): the run-wide timeout still applies.
    """

    def __init__(self, admin_conninfo: str, database: str, role: str, limit_bytes: int, *, poll_s: float = POLL_S):
        self._conninfo = admin_conninfo
        self.database = database
        self.role = role
        self.limit_bytes = limit_bytes
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tripped: int | None = None
        self.largest = 0

    def __enter__(self) -> "GrowthGuard":
        self._thread = threading.Thread(target=self._watch, name=f"growth-guard-{self.database}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        """Measure now, every ``poll_s`` while the tool runs, and once more when it has ended."""
        try:
            with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                while True:
                    ended = self._stop.wait(self._poll_s)
                    size = int(conn.execute("SELECT pg_database_size(%s)", (self.database,)).fetchone()[0])
                    self.largest = max(self.largest, size)
                    if size > self.limit_bytes:
                        self.tripped = size
                        self._end_restore(conn)
                        return
                    if ended:
                        return
        except psycopg.Error:
            return  # cannot watch: see the class docstring

    def _end_restore(self, conn: psycopg.Connection) -> None:
        """End every session of the restore role in the scratch database: the tool then exits on its own."""
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                     (self.database, self.role))
