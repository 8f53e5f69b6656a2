"""Row counts and content digests carried by the PostgreSQL dump itself, read without a server.

The restore checklist compares restored counts with the *source*; the dump's COPY blocks are
that source. A plain ``database.sql`` is streamed; a custom dump is read through ``pg_restore --data-only
-f -``, which streams the same text.

The dump is untrusted: a single "line" may be gigabytes long, so lines are read in bounded
pieces and only a line's head (``limits.max_line_chars``) and its last bytes are ever held.

The same read digests each table's COPY rows (``content_digest``): the row's exact text, as
``COPY table (columns) TO STDOUT`` gives it back from the restored database.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

from .child_env import child_env
from .content_digest import Digest, DigestSum, Keyed, Sampler
from .engines.local_postgres import find_client_bindir
from .errors import DrillFailure
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
    for head, tail, _whole in _lines(stream, head_bytes, hash_long=False):
        yield head, tail


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


# --------------------------------------------------------------------------- content digests


@dataclass(frozen=True)
class TableContent:
    """One table's COPY block in the dump: where, which columns (in the dump's order), how many rows, digest.

    ``rows`` counts every row; ``digest`` covers the sampled ones (all of them unless sampling).

    ``columns`` is None when the COPY line was too long to read whole (past ``limits.max_line_chars``).
    """

    schema: str | None
    table: str
    columns: tuple[str, ...] | None
    rows: int
    digest: Digest
    complete: bool = True       # False: the stream ended inside the block


Line = tuple[bytes, bytes, bytes | None]   # (head, tail, sha256 of the whole line when it is longer than head)


def hashed_lines(stream: IO[bytes], head_bytes: int) -> Iterator[Line]:
    """Like :func:`bounded_lines`, and a line longer than ``head_bytes`` is hashed whole as it streams by.

    A short line is its head (the caller hashes it only if it is a row); a long one comes with
    the sha256 of all of it, never held in memory.
    """
    return _lines(stream, head_bytes, hash_long=True)


def _lines(stream: IO[bytes], head_bytes: int, *, hash_long: bool) -> Iterator[Line]:
    """The one bounded line reader: a long line keeps its head and tail (and, if asked, its whole sha256)."""
    while True:
        piece = stream.readline(head_bytes)
        if not piece:
            return
        if piece.endswith(b"\n"):
            line = piece[:-1]
            yield line, line[-TAIL_BYTES:], None
            continue
        head, tail = piece, piece[-TAIL_BYTES:]
        whole = hashlib.sha256(piece) if hash_long else None
        while True:  # the rest of a long line: only its end is kept
            more = stream.readline(READ_CHUNK)
            if not more:
                yield head, tail, whole.digest() if whole is not None else None
                return
            rest = more[:-1] if more.endswith(b"\n") else more
            if whole is not None:
                whole.update(rest)
            tail = (tail + rest)[-TAIL_BYTES:]
            if more.endswith(b"\n"):
                yield head, tail, whole.digest() if whole is not None else None
                break


def copy_columns(head: bytes, after: int) -> tuple[str, ...] | None:
    """The column list of a ``COPY t (a, "b c") FROM stdin;`` line from offset ``after``; () for none."""
    text = head.decode("utf-8", errors="replace")
    rest = text[after:].lstrip()
    if rest.startswith("FROM stdin;"):
        return ()
    if not rest.startswith("("):
        return None
    names: list[str] = []
    position, current, quoted = 1, [], False
    while position < len(rest):
        char = rest[position]
        if quoted:
            if char == '"' and rest[position + 1:position + 2] == '"':
                current.append('"')
                position += 1
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = True
        elif char in ",)":
            names.append("".join(current).strip())
            current = []
            if char == ")":
                return tuple(names) if rest[position + 1:].strip() == "FROM stdin;" else None
        else:
            current.append(char)
        position += 1
    return None


def row_key(head: bytes, positions: tuple[int, ...] | None) -> bytes:
    """A row's key: the fields at ``positions`` (its primary key), the first field, or (None) the whole row."""
    if positions is None:
        return head
    fields = head.split(b"\t")
    return b"\t".join(fields[i] if i < len(fields) else b"" for i in positions)


def copy_content(lines: Iterable[Line], sampler: Sampler) -> dict[str, TableContent]:
    """Rows and a digest per table of the COPY blocks in ``lines`` (sampled by each row's first field).

    A block the stream ends inside (a cut dump) is not ``complete``: its rows are no count.
    """
    found: dict[str, list] = {}
    entry: list | None = None     # [schema, columns, rows, sums, complete] of the block being read
    sha256 = hashlib.sha256
    for head, tail, whole in lines:
        if entry is None:
            if head.startswith(b"COPY ") and tail.endswith(COPY_TAIL):
                match = COPY_HEAD.match(head.decode("utf-8", errors="replace"))
                if match:
                    columns = copy_columns(head, match.end() - 1) if whole is None else None
                    entry = found[match.group(2)] = [match.group(1), columns, 0, DigestSum(), False]
        elif head == END_OF_DATA:
            entry[4] = True
            entry = None
        else:
            entry[2] += 1
            if sampler.full or sampler.keeps(row_key(head, (0,))):
                entry[3].add_hash(whole if whole is not None else sha256(head).digest())
    return {table: TableContent(schema, table, columns, rows, sums.result(), complete)
            for table, (schema, columns, rows, sums, complete) in found.items()}


def source_counts_and_content(dump: Path, limits: Limits,
                              sampler: Sampler) -> tuple[dict[str, int | None] | None, dict[str, TableContent]]:
    """``source_row_counts`` and each whole COPY block's content, in one read of the restored dump."""
    if dump.suffix == ".sql":
        with open(dump, "rb") as handle:
            contents = copy_content(hashed_lines(handle, limits.max_line_chars), sampler)
        return _counts_of(contents), _whole(contents)
    bindir = find_client_bindir()
    if bindir is None:
        return None, {}
    with subprocess.Popen([str(bindir / "pg_restore"), "--data-only", "-f", "-", str(dump)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env()) as proc:
        stream: IO[bytes] = proc.stdout  # type: ignore[assignment]
        contents = copy_content(hashed_lines(stream, limits.max_line_chars), sampler)
    counts = _counts_of(contents)
    if proc.returncode == 0:
        return counts, _whole(contents)
    listed = toc_tables(dump, bindir)   # as source_row_counts: a damaged dump's other tables, count unknown
    if not listed and not counts:
        return None, _whole(contents)
    return {**{table: None for table in listed}, **{t: n for t, n in counts.items() if n is not None}}, _whole(contents)


def _counts_of(contents: dict[str, TableContent]) -> dict[str, int | None]:
    return {table: content.rows if content.complete else None for table, content in contents.items()}


def _whole(contents: dict[str, TableContent]) -> dict[str, TableContent]:
    return {table: content for table, content in contents.items() if content.complete}


@contextmanager
def dump_lines(dump: Path, limits: Limits, only: tuple[str | None, str] | None = None) -> Iterator[Iterator[Line] | None]:
    """The text lines of the dump (a plain file read, a custom one through pg_restore); None without pg_restore.

    ``only`` = (schema, table) asks pg_restore for that table's data alone (the keyed pass).
    A pg_restore that fails (the dump reads back differently than it restored) is a DrillFailure.
    """
    if dump.suffix == ".sql":
        with open(dump, "rb") as handle:
            yield hashed_lines(handle, limits.max_line_chars)
        return
    bindir = find_client_bindir()
    if bindir is None:
        yield None
        return
    selection = [] if only is None else ([f"--schema={only[0]}"] if only[0] else []) + [f"--table={only[1]}"]
    with subprocess.Popen([str(bindir / "pg_restore"), "--data-only", *selection, "-f", "-", str(dump)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env()) as proc:
        stream: IO[bytes] = proc.stdout  # type: ignore[assignment]
        yield hashed_lines(stream, limits.max_line_chars)
        stream.read()  # drain, so the exit status says whether all of it was written
    if proc.returncode != 0:
        raise DrillFailure(f"pg_restore exited {proc.returncode} reading the data back for the content check",
                           where=f"postgresql/{dump.name}", fix="see postgresql.restore for what is damaged")


def keyed_rows(dump: Path, limits: Limits, schema: str | None, table: str, positions: tuple[int, ...] | None,
               sampler: Sampler) -> Callable[[], Keyed]:
    """The dump side of the keyed pass over one table: (key, sha256) of each (sampled) row, re-read per call."""
    def rows() -> Keyed:
        with dump_lines(dump, limits, only=(schema, table)) as lines:
            if lines is None:
                return
            inside = False
            for head, tail, whole in lines:
                if not inside:
                    if head.startswith(b"COPY ") and tail.endswith(COPY_TAIL):
                        match = COPY_HEAD.match(head.decode("utf-8", errors="replace"))
                        inside = match is not None and match.group(2) == table
                elif head == END_OF_DATA:
                    inside = False
                elif sampler.full or sampler.keeps(row_key(head, (0,))):
                    yield row_key(head, positions), whole if whole is not None else hashlib.sha256(head).digest()
    return rows
