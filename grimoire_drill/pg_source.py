"""Row counts carried by the PostgreSQL dump itself, read without a server.

The restore checklist compares restored counts with the *source*; the dump's COPY blocks are
that source. A plain ``database.sql`` is streamed; a custom dump is read through ``pg_restore --data-only
-f -``, which streams the same text.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import IO, Iterable

from .child_env import child_env
from .engines.local_postgres import find_client_bindir

COPY_START = re.compile(r'^COPY (?:"?(\w+)"?\.)?"?(\w+)"? .*FROM stdin;$')


def count_copy_rows(lines: Iterable[str]) -> dict[str, int]:
    """Rows per table in the COPY ... FROM stdin blocks of a plain dump."""
    counts: dict[str, int] = {}
    table = None
    for line in lines:
        if table is None:
            match = COPY_START.match(line.rstrip("\n"))
            if match:
                table = match.group(2)
                counts[table] = 0
        elif line.startswith("\\.") and line.rstrip("\n") == "\\.":
            table = None
        else:
            counts[table] += 1
    return counts


def source_row_counts(dump: Path) -> dict[str, int] | None:
    """Per-table rows in the dump that was restored (so the two dumps taken minutes apart are
    never compared with each other); None when it cannot be read without a server."""
    if dump.suffix == ".sql":
        with open(dump, encoding="utf-8", errors="replace") as handle:
            return count_copy_rows(handle)
    bindir = find_client_bindir()
    if bindir is None:
        return None
    with subprocess.Popen([str(bindir / "pg_restore"), "--data-only", "-f", "-", str(dump)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="replace",
                          env=child_env()) as proc:
        stream: IO[str] = proc.stdout  # type: ignore[assignment]
        counts = count_copy_rows(stream)
    return counts if proc.returncode == 0 else None
