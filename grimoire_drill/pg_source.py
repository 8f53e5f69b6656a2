"""Row counts carried by the PostgreSQL dump itself, read without a server.

The restore checklist compares restored counts with the *source*; the dump's COPY blocks are
that source. A plain ``database.sql`` is streamed; a custom dump is read through ``pg_restore --data-only
-f -``, which streams the same text.

The dump is untrusted: a single "line" may be gigabytes long, so lines are read in bounded
pieces and only a line's head (``limits.max_line_chars``) and its last bytes are ever held.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import IO, Iterable, Iterator

from .child_env import child_env
from .engines.local_postgres import find_client_bindir
from .limits import Limits

COPY_HEAD = re.compile(r'^COPY (?:"?(\w+)"?\.)?"?(\w+)"? ')
COPY_TAIL = b" FROM stdin;"
END_OF_DATA = b"\\."
TAIL_BYTES = 32
READ_CHUNK = 1 << 20
TOC_TABLE_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA \S+ (\S+) ")
TOC_TIMEOUT_S = 120
TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (?P<rest>.+)$")
PLAIN_TYPE = re.compile(rb"^-- (?:Data for )?Name: .*; Type: (?P<kind>[A-Z][A-Z ]*); Schema: ")
MULTIWORD_KINDS = ("TABLE DATA", "SEQUENCE SET", "SEQUENCE OWNED BY", "FK CONSTRAINT", "DEFAULT ACL",
                   "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "CHECK CONSTRAINT", "EVENT TRIGGER",
                   "FOREIGN TABLE", "LARGE OBJECT", "BLOB DATA", "BLOBS", "TEXT SEARCH CONFIGURATION",
                   "TEXT SEARCH DICTIONARY", "POLICY", "ROW SECURITY", "PUBLICATION TABLE", "DATABASE PROPERTIES")
SANE_KIND = re.compile(r"[A-Z][A-Z ]{0,39}")
MAX_KINDS = 50  # a hostile dump's invented kinds: the summary stays small
MAX_TOC_LINES = 100_000


def bounded_lines(stream: IO[bytes], head_bytes: int) -> Iterator[tuple[bytes, bytes]]:
    """``(head, tail)`` of each line without its newline: the first ``head_bytes`` and the last TAIL_BYTES."""
    while True:
        piece = stream.readline(head_bytes)
        if not piece:
            return
        if piece.endswith(b"\n"):
            line = piece[:-1]
            yield line, line[-TAIL_BYTES:]
            continue
        head, tail = piece, piece[-TAIL_BYTES:]
        while True:  # the rest of a long line: only its end is kept
            more = stream.readline(READ_CHUNK)
            if not more:
                yield head, tail
                return
            if more.endswith(b"\n"):
                yield head, (tail + more[:-1])[-TAIL_BYTES:]
                break
            tail = (tail + more)[-TAIL_BYTES:]


def count_copy_rows(lines: Iterable[tuple[bytes, bytes]]) -> dict[str, int | None]:
    """Rows per table in the COPY ... FROM stdin blocks of a plain dump (lines from bounded_lines).

    A block the stream ends inside (a cut dump) has no known count: None, never its partial count.
    """
    counts: dict[str, int | None] = {}
    table = None
    rows = 0
    for head, tail in lines:
        if table is None:
            if head.startswith(b"COPY ") and tail.endswith(COPY_TAIL):
                match = COPY_HEAD.match(head.decode("utf-8", errors="replace"))
                if match:
                    table, rows = match.group(2), 0
                    counts[table] = None
        elif head == END_OF_DATA:
            counts[table] = rows
            table = None
        else:
            rows += 1
    return counts


def _count_kind(kinds: dict[str, int], kind: str) -> None:
    """One more object of ``kind``; a kind the dump invented (any text) counts as OTHER."""
    kind = kind if SANE_KIND.fullmatch(kind) else "OTHER"
    if kind in kinds or len(kinds) < MAX_KINDS:
        kinds[kind] = kinds.get(kind, 0) + 1


def dump_objects(dump: Path, limits: Limits = Limits()) -> dict[str, int] | None:
    """Objects per kind the dump holds (TABLE 15, INDEX 15, FK CONSTRAINT 16...): its TOC summarised.

    A custom dump's TOC through ``pg_restore -l``; a plain dump's ``-- Name: ...; Type: KIND;``
    comments. None: the TOC cannot be read (no pg_restore, or the dump is cut inside it).
    """
    kinds: dict[str, int] = {}
    if dump.suffix == ".sql":
        with open(dump, "rb") as handle:
            for head, _ in bounded_lines(handle, limits.max_line_chars):
                match = PLAIN_TYPE.match(head)
                if match:
                    _count_kind(kinds, match.group("kind").decode("ascii").strip())
        return kinds
    bindir = find_client_bindir()
    if bindir is None:
        return None
    try:
        done = subprocess.run([str(bindir / "pg_restore"), "-l", str(dump)], capture_output=True, check=False,
                              env=child_env(), timeout=TOC_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None  # a TOC pg_restore cannot list in time: the summary says nothing of it
    if done.returncode != 0:
        return None
    for raw in done.stdout.decode("utf-8", errors="replace").splitlines()[:MAX_TOC_LINES]:
        match = TOC_ENTRY.match(raw)
        if match:
            rest = match.group("rest")
            _count_kind(kinds, next((kind for kind in MULTIWORD_KINDS if rest.startswith(kind + " ")),
                                    rest.split(" ", 1)[0]))
    return kinds


def toc_tables(dump: Path, bindir: Path) -> list[str]:
    """The tables whose data a custom dump's table of contents lists (``pg_restore -l``: it reads only the TOC)."""
    try:
        done = subprocess.run([str(bindir / "pg_restore"), "-l", str(dump)], capture_output=True, check=False,
                              env=child_env(), timeout=TOC_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return []
    tables = []
    for raw in done.stdout.decode("utf-8", errors="replace").splitlines()[:MAX_TOC_LINES]:
        match = TOC_TABLE_DATA.match(raw)
        if match:
            tables.append(match.group(1))
    return tables


def source_row_counts(dump: Path, limits: Limits = Limits()) -> dict[str, int | None] | None:
    """Per-table rows in the dump that was restored (so the two dumps taken minutes apart are
    never compared with each other); None when it cannot be read without a server."""
    if dump.suffix == ".sql":
        with open(dump, "rb") as handle:
            return count_copy_rows(bounded_lines(handle, limits.max_line_chars))
    bindir = find_client_bindir()
    if bindir is None:
        return None
    with subprocess.Popen([str(bindir / "pg_restore"), "--data-only", "-f", "-", str(dump)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env()) as proc:
        stream: IO[bytes] = proc.stdout  # type: ignore[assignment]
        counts = count_copy_rows(bounded_lines(stream, limits.max_line_chars))
    if proc.returncode == 0:
        return counts
    # A damaged dump: the blocks read whole keep their counts; every other table its TOC lists
    # shows as "in the dump, count unknown", so no table drops out of the counts.
    listed = toc_tables(dump, bindir)
    if not listed and not counts:
        return None
    return {**{table: None for table in listed}, **{t: n for t, n in counts.items() if n is not None}}
