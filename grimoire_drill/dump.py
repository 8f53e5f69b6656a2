"""Read what a backup holds without any database server: mongodump trees and pg dumps.

Why readers of our own: no MongoDB server or ``mongorestore`` may exist where the drill runs,
and a restore that silently stops at a torn document would report a smaller count as if it
were the truth. So every reader here either returns data that is really whole, or raises a
one-line :class:`DrillFailure` naming the file; and every reader streams, because dumps can
be larger than memory.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

import bson
from bson import json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from grimoire_drill.errors import DrillFailure
from grimoire_drill.json_export import count_export, iter_export  # noqa: F401 — the exports' reader, re-exported
from grimoire_drill.limits import Limits
from grimoire_drill.text import printable, quote

CHUNK = 1024 * 1024
PG_HEAD_BYTES = 64 * 1024
PG_CUSTOM_FORMAT = 1  # pg_backup.h: archCustom

# Dates beyond Python's datetime range are valid BSON; decode them as DatetimeMS, not as errors.
VALIDATING_CODEC = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, BSONError)
# Each level of nesting costs a BSON document at least 7 bytes (type, empty key's NUL, length,
# terminator): a document shorter than this cannot be too deep, and is not walked.
BSON_BYTES_PER_LEVEL = 7
# What MongoDB refuses in a database name (mongo/db/namespace_string.cpp, on any OS) and NUL.
DATABASE_NAME_FORBIDDEN = frozenset('/\\. "$*<>:|?\x00')
MAX_NAMESPACE_BYTES = 255  # MongoDB's own ceiling on "db.collection" (a fact of the server, not a resource limit)
# Longest first: "x.metadata.json.gz" must not be taken for a collection "x.metadata.json".
DUMP_SUFFIXES = ((".metadata.json.gz", "metadata"), (".metadata.json", "metadata"),
                 (".bson.gz", "bson"), (".bson", "bson"))

FIX_MONGODUMP = "re-run mongodump for this backup, or re-copy the archive"
FIX_PG_DUMP = "re-run pg_dump -F c -b (or plain pg_dump for database.sql), or re-copy the archive"


@dataclass(frozen=True)
class IndexSpec:
    """One index as mongodump recorded it; ``options`` is the rest of the spec (``v``, ``sparse``…)."""

    name: str
    key: tuple[tuple[str, int | str], ...]
    unique: bool
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionDump:
    """One collection's files in a mongodump tree. ``bson_path`` is None for views.

    ``problem`` says why the collection cannot be loaded at all (a file name that is not UTF-8,
    which mongodump never writes): the loader reports it against this collection and loads the others.
    """

    database: str
    name: str
    bson_path: Path | None
    metadata_path: Path | None
    gzipped: bool
    indexes: tuple[IndexSpec, ...]
    uuid: str | None
    problem: str | None = None


# --------------------------------------------------------------------------- mongodump


def scan_mongodump(root: Path, limits: Limits | None = None) -> dict[str, dict[str, CollectionDump]]:
    """database -> collection -> files, for a ``mongodump --out`` folder (``backup/mongodb``).

    Top-level files (``prelude.json``, ``oplog.bson``) are not collections and are ignored.
    A missing or empty folder gives {}: the backup job leaves it empty when MongoDB was down,
    and saying so is the drill's job, not the reader's. Names that are not UTF-8 (shown with
    ``\\xff`` escapes) become collections with a ``problem``, never a crash further on.
    """
    limits = Limits() if limits is None else limits
    root = Path(root)
    if not root.is_dir():
        return {}
    tree: dict[str, dict[str, CollectionDump]] = {}
    for db_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        collections = _scan_database(db_dir, limits)
        if collections:
            tree[_shown_name(db_dir.name)] = collections
    return tree


def _is_utf8(name: str) -> bool:
    """False for a name holding surrogate escapes (os.fsdecode's stand-ins for non-UTF-8 bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown_name(name: str) -> str:
    """A name safe for every output and for a database server: non-UTF-8 bytes as ``\\xff`` escapes."""
    return name if _is_utf8(name) else printable(name)


def read_metadata(path: Path, limits: Limits | None = None) -> dict:
    """A ``.metadata.json`` (or ``.gz``) as mongodump writes it: canonical Extended JSON.

    Read bounded: at most ``limits.max_text_file_bytes`` (after gunzip) and lines of at most
    ``limits.max_line_chars``, so a 10 GB or one-line-bomb metadata file is refused, not loaded.
    """
    limits = Limits() if limits is None else limits
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as stream:
            raw = stream.read(limits.max_text_file_bytes + 1)
        if len(raw) > limits.max_text_file_bytes:
            raise DrillFailure(f"metadata is larger than {limits.name('max_text_file_bytes')} bytes",
                               where=str(path), fix=FIX_MONGODUMP + "; or raise the limit in [limits]")
        text = raw.decode("utf-8")
        _check_line_lengths(text, limits, path)
        metadata = json_util.loads(text)
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise DrillFailure(f"metadata is not valid gzip: {exc}", where=str(path), fix=FIX_MONGODUMP) from exc
        raise DrillFailure(f"cannot read metadata: {exc.strerror or exc}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except GZIP_ERRORS as exc:
        raise DrillFailure("metadata gzip stream is truncated or corrupt", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except PARSE_ERRORS as exc:
        raise DrillFailure(f"malformed metadata JSON: {_first_line(exc)}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    if not isinstance(metadata, Mapping):
        raise DrillFailure("metadata is not a JSON object", where=str(path), fix=FIX_MONGODUMP)
    return dict(metadata)


def _check_line_lengths(text: str, limits: Limits, path: Path) -> None:
    """Refuse a line longer than ``limits.max_line_chars`` (str.find: linear, no regex)."""
    start, number = 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end - start > limits.max_line_chars:
            raise DrillFailure(f"line {number} is longer than {limits.name('max_line_chars')} characters",
                               where=str(path), fix=FIX_MONGODUMP + "; or raise the limit in [limits]")
        start, number = end + 1, number + 1


@dataclass(frozen=True)
class BsonBatch:
    """Consecutive whole documents of a ``.bson`` file, validated by one full decode.

    ``documents`` are the decoded documents (the in-process store takes these as they are);
    ``raw`` holds each document's bytes when they were asked for (a real server takes those);
    ``start`` is the first document's byte offset in the (uncompressed) stream, for messages.
    """

    documents: list[dict]
    raw: list[bytes] | None
    start: int = 0


def iter_bson_batches(path: Path, *, raw: bool = False, max_docs: int = 1000,
                      max_bytes: int = 8 * 1024 * 1024, limits: Limits | None = None) -> Iterator[BsonBatch]:
    """A ``.bson`` (or ``.bson.gz``) file as batches of whole, valid documents, read once.

    Every document is checked before it is handed out: a sane length prefix, the whole body,
    the trailing 0x00, and a full decode. A file cut mid-document fails (after the documents
    before the damage) rather than ending early, so a count from here is a count of whole
    documents. Batches decode in one C call (``bson.decode_all``), which is why the loader
    and the counter both read through here: one decode per document, not one per use.

    A document declaring more than ``limits.max_document_bytes`` is refused before any buffer
    is grown for it, and one nested deeper than ``limits.max_bson_depth`` (MongoDB's own 100)
    is refused after its decode, so nothing downstream (an in-process store, a check, a JSON
    writer) ever recurses through it.
    """
    limits = Limits() if limits is None else limits
    path = Path(path)
    unit = " of the uncompressed stream" if path.name.endswith(".gz") else ""
    try:
        stream = _open_maybe_gzip(path)
    except OSError as exc:
        raise DrillFailure(f"cannot read BSON: {exc.strerror or exc}", where=str(path), fix=FIX_MONGODUMP) from exc
    with stream:
        if unit and path.stat().st_size == 0:
            raise DrillFailure("empty file, not gzip data", where=str(path), fix=FIX_MONGODUMP)
        yield from _BsonBatcher(stream, path, unit, raw, max_docs, max_bytes, limits).batches()


class _BsonBatcher:
    """Splits a BSON stream on its length prefixes inside a large read buffer, then decodes in bulk."""

    READ_BYTES = 8 * 1024 * 1024

    def __init__(self, stream: BinaryIO, path: Path, unit: str, raw: bool, max_docs: int, max_bytes: int,
                 limits: Limits):
        self._stream, self._path, self._unit, self._raw = stream, path, unit, raw
        self._max_docs, self._max_bytes = max_docs, max_bytes
        self._limits = limits
        self._walk_from_bytes = BSON_BYTES_PER_LEVEL * (limits.max_bson_depth + 1)
        self._buffer = b""
        self._base = 0            # stream offset of _buffer[0]
        self._eof = False

    def _fail(self, message: str) -> DrillFailure:
        return DrillFailure(message, where=str(self._path), fix=FIX_MONGODUMP)

    def _have(self, position: int, wanted: int) -> int:
        """Make ``wanted`` bytes from ``position`` (a buffer index) available if the stream has them.

        Returns the new index of ``position``: bytes before it are dropped from the buffer.
        """
        if position + wanted <= len(self._buffer) or self._eof:
            return position
        parts = [self._buffer[position:]]
        have = len(parts[0])
        while have < wanted and not self._eof:
            chunk = _read_bson(self._stream, max(self.READ_BYTES, wanted - have), self._path,
                               self._base + position)
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self._base += position
        self._buffer = b"".join(parts)
        return 0

    def batches(self) -> Iterator[BsonBatch]:
        """Documents in batches; the documents before any damage are handed out before it is raised."""
        position = 0              # next document's index in the buffer
        spans: list[tuple[int, int]] = []   # (start, end) of the pending batch: contiguous, in the current buffer
        problem = None
        while True:
            if spans and position + 4 > len(self._buffer) and not self._eof:
                yield self._decode(spans)  # the buffer is about to be replaced: hand out what it holds
                spans = []
            position = self._have(position, 4)
            offset = self._base + position
            head = self._buffer[position:position + 4]
            if not head:
                break
            if len(head) < 4:
                problem = f"truncated mid-document at byte {offset}{self._unit}: {len(head)} stray bytes"
                break
            length = int.from_bytes(head, "little", signed=True)
            if length < 5:
                problem = f"invalid document length {length} at byte {offset}{self._unit}"
                break
            if length > self._limits.max_document_bytes:
                problem = (f"invalid document length {length:,} at byte {offset}{self._unit}: over "
                           f"{self._limits.name('max_document_bytes')}, refused before reading it")
                break
            if position + length > len(self._buffer) and not self._eof:
                if spans:
                    yield self._decode(spans)
                    spans = []
                position = self._have(position, length)
            available = len(self._buffer) - position
            if available < length:
                problem = (f"truncated mid-document at byte {offset}{self._unit}: the document "
                           f"declares {length} bytes, only {available} follow")
                break
            end = position + length
            if self._buffer[end - 1] != 0:
                problem = f"document at byte {offset}{self._unit} does not end with 0x00"
                break
            spans.append((position, end))
            position = end
            if len(spans) >= self._max_docs or end - spans[0][0] >= self._max_bytes:
                yield self._decode(spans)
                spans = []
        if spans:
            yield self._decode(spans)
        if problem is not None:
            raise self._fail(problem)

    def _decode(self, spans: list[tuple[int, int]]) -> BsonBatch:
        try:  # a bytes slice: the C decoder is slower on a memoryview
            documents = bson.decode_all(self._buffer[spans[0][0]:spans[-1][1]], VALIDATING_CODEC)
        except PARSE_ERRORS:
            documents = self._decode_one_by_one(memoryview(self._buffer), spans)
        for document, (start, end) in zip(documents, spans):
            if end - start >= self._walk_from_bytes and _too_deep(document, self._limits.max_bson_depth):
                raise self._fail(f"the document at byte {self._base + start}{self._unit} is nested deeper than "
                                 f"{self._limits.name('max_bson_depth')} levels (MongoDB refuses it)")
        raw = [self._buffer[start:end] for start, end in spans] if self._raw else None
        return BsonBatch(documents, raw, self._base + spans[0][0])

    def _decode_one_by_one(self, view: memoryview, spans: list[tuple[int, int]]) -> list[dict]:
        """The bulk decode failed: find the document at fault and name its offset."""
        for start, end in spans:
            try:
                bson.decode(view[start:end], codec_options=VALIDATING_CODEC)
            except PARSE_ERRORS as exc:
                raise self._fail(f"document at byte {self._base + start}{self._unit} is not valid BSON: "
                                 f"{_first_line(exc)}") from exc
        raise self._fail(f"documents from byte {self._base + spans[0][0]}{self._unit} do not decode together")


def _too_deep(document: dict, max_depth: int) -> bool:
    """True when documents or arrays nest more than ``max_depth`` levels below the top; a loop, never recursion."""
    pending = [(document, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > max_depth:
            return True
        for value in (node.values() if isinstance(node, dict) else node):
            if isinstance(value, (dict, list)):
                pending.append((value, depth + 1))
    return False


def iter_raw_bson(path: Path, limits: Limits | None = None) -> Iterator[bytes]:
    """Each whole, valid document of a ``.bson``/``.bson.gz`` file as raw bytes (see iter_bson_batches)."""
    for batch in iter_bson_batches(path, raw=True, limits=limits):
        assert batch.raw is not None
        yield from batch.raw


def count_bson(path: Path, limits: Limits | None = None) -> int:
    """Whole, valid documents in a ``.bson``/``.bson.gz`` file."""
    return sum(len(batch.documents) for batch in iter_bson_batches(path, limits=limits))


def _scan_database(db_dir: Path, limits: Limits) -> dict[str, CollectionDump]:
    """The collections of one database folder; two files claiming one collection fail, naming both.

    Never pick one: ``recipes.bson`` beside ``recipes.bson.gz``, ``a%2Eb.bson`` beside ``a.b.bson``,
    or a ``.metadata.json`` whose ``collectionName`` is another file's collection would each make
    the restored collection depend on which file came first.
    """
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(db_dir.iterdir()):
        if not path.is_file():
            continue
        for suffix, role in DUMP_SUFFIXES:
            if path.name.endswith(suffix) and len(path.name) > len(suffix):
                stem = path.name[: -len(suffix)]
                roles = found.setdefault(stem, {})
                if role in roles:
                    raise _claimed_twice(db_dir, roles[role], path)
                roles[role] = path
                break
    collections: dict[str, CollectionDump] = {}
    for stem, roles in found.items():
        dump = _collection(db_dir.name, stem, roles.get("bson"), roles.get("metadata"), limits)
        if dump.name in collections:
            earlier = collections[dump.name]
            raise _claimed_twice(db_dir, _first_file(earlier), _first_file(dump), dump.name)
        collections[dump.name] = dump
    return dict(sorted(collections.items()))


def _name_problem(name: str) -> str | None:
    """Why no MongoDB server takes ``name`` as a collection name (pymongo's own rules), or None."""
    if not _is_utf8(name):
        return "its collectionName is not valid Unicode (a lone surrogate): not loaded"
    if len(name.encode("utf-8")) > MAX_NAMESPACE_BYTES:
        return f"its name is longer than MongoDB's {MAX_NAMESPACE_BYTES} bytes: not loaded"
    if not name or "$" in name or "\x00" in name or name.startswith(".") or name.endswith("."):
        return f"{quote(name[:1000])!r} is not a name MongoDB takes for a collection (empty, '$', NUL, or a dot at an end): not loaded"
    return None


def _first_file(dump: CollectionDump) -> Path:
    path = dump.bson_path if dump.bson_path is not None else dump.metadata_path
    assert path is not None  # a collection exists because one of its files does
    return path


def _claimed_twice(db_dir: Path, first: Path, second: Path, name: str | None = None) -> DrillFailure:
    shown = "one collection" if name is None else f"collection {printable(name)!r}"
    return DrillFailure(f"both {printable(first.name)} and {printable(second.name)} claim {shown}",
                        where=str(db_dir), fix=FIX_MONGODUMP + " (one dump per collection, from one mongodump run)")


def _collection(database: str, stem: str, bson_path: Path | None, metadata_path: Path | None,
                limits: Limits) -> CollectionDump:
    if not _is_utf8(stem) or not _is_utf8(database):
        what = "file name" if _is_utf8(database) else "database folder name"
        return CollectionDump(_shown_name(database), _shown_name(stem), bson_path, metadata_path, False, (), None,
                              problem=f"the {what} is not UTF-8 (mongodump writes UTF-8 names): not loaded")
    if not database or set(database) & DATABASE_NAME_FORBIDDEN:
        return CollectionDump(database, _shown_name(stem), bson_path, metadata_path, False, (), None,
                              problem=f"the database folder {quote(database)!r} is not a name MongoDB takes "
                                      "(a space or one of /\\.\"$*<>:|?): not loaded")
    name = unquote(stem)  # mongodump percent-escapes awkward characters in file names
    indexes: tuple[IndexSpec, ...] = ()
    uuid = None
    if metadata_path is not None:
        metadata = read_metadata(metadata_path, limits)
        recorded = metadata.get("collectionName")
        if isinstance(recorded, str) and recorded:
            name = recorded
        indexes = _indexes(metadata, metadata_path)
        uuid = metadata.get("uuid") if isinstance(metadata.get("uuid"), str) else None
    gzipped = any(path is not None and path.name.endswith(".gz") for path in (bson_path, metadata_path))
    problem = _name_problem(name)
    shown = _shown_name(name) if problem is None else quote(name[:1000])
    return CollectionDump(database, shown, bson_path, metadata_path, gzipped, indexes, uuid, problem)


def _indexes(metadata: Mapping, path: Path) -> tuple[IndexSpec, ...]:
    specs = metadata.get("indexes", [])
    if not isinstance(specs, list):
        raise DrillFailure("metadata 'indexes' is not a list", where=str(path), fix=FIX_MONGODUMP)
    return tuple(_index(spec, position, path) for position, spec in enumerate(specs))


def _index(spec: Any, position: int, path: Path) -> IndexSpec:
    def bad(reason: str) -> DrillFailure:
        return DrillFailure(f"index #{position} in metadata {reason}", where=str(path), fix=FIX_MONGODUMP)

    if not isinstance(spec, Mapping):
        raise bad("is not an object")
    name, key = spec.get("name"), spec.get("key")
    if not isinstance(name, str) or not name:
        raise bad("has no name")
    if not isinstance(key, Mapping) or not key:
        raise bad(f"({name}) has no key")
    fields = tuple((str(field_name), _direction(value, bad)) for field_name, value in key.items())
    options = {option: value for option, value in spec.items() if option not in {"name", "key", "unique"}}
    return IndexSpec(name=name, key=fields, unique=bool(spec.get("unique", False)), options=options)


def _direction(value: Any, bad) -> int | str:
    """1 / -1 / "text" / "2dsphere" / "hashed"…; doubles from old shells (1.0) become ints."""
    if isinstance(value, bool):
        raise bad(f"has a boolean key direction {value!r}")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value:
        return value
    raise bad(f"has an unusable key direction {value!r}")


def _open_maybe_gzip(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _read_bson(stream: BinaryIO, size: int, path: Path, offset: int) -> bytes:
    """Up to ``size`` bytes (fewer only at end of data); gzip damage becomes a DrillFailure."""
    parts: list[bytes] = []
    wanted = size
    try:
        while wanted > 0:
            chunk = stream.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
    except GZIP_ERRORS as exc:
        raise DrillFailure(f"gzip stream is truncated or corrupt after the document at byte {offset} "
                           f"of the uncompressed stream ({_first_line(exc)})", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except OSError as exc:
        raise DrillFailure(f"cannot read BSON at byte {offset}: {exc.strerror or exc}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    return b"".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --------------------------------------------------------------------------- PostgreSQL


def pg_dump_format(path: Path) -> str:
    """``"custom"`` for a ``pg_dump -F c`` archive (PGDMP header checked), ``"plain"`` for SQL text."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(PG_HEAD_BYTES)
    except OSError as exc:
        raise DrillFailure(f"cannot read the PostgreSQL dump: {exc.strerror or exc}", where=str(path),
                           fix=FIX_PG_DUMP) from exc
    if head.startswith(b"PGDMP"):
        _check_custom_header(head, path)
        return "custom"
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    # SQL text has no NUL bytes; a pg_dump -F t archive does, and holds a restore.sql that says
    # "PostgreSQL database dump" too.
    if b"\0" not in head and (text.startswith("--") or "PostgreSQL database dump" in text):
        return "plain"
    if head[257:262] == b"ustar":
        what = "a tar archive (pg_dump -F t?), not a custom archive or a plain SQL dump"
    elif not head:
        what = "empty"
    else:
        what = "neither a pg_dump custom archive (PGDMP) nor a plain SQL dump"
    raise DrillFailure(f"the PostgreSQL dump is {what}", where=str(path), fix=FIX_PG_DUMP)


def _check_custom_header(head: bytes, path: Path) -> None:
    """The fields pg_restore checks first (pg_backup_archiver.c ReadHead): version, sizes, format."""
    def bad(reason: str) -> DrillFailure:
        return DrillFailure(f"damaged pg_dump header: {reason}", where=str(path), fix=FIX_PG_DUMP)

    if len(head) < 8:
        raise bad("it ends inside the header")
    major, minor = head[5], head[6]
    if major != 1:
        raise bad(f"archive version {major}.{minor} is not 1.x")
    position = 8 if minor > 0 else 7  # the revision byte exists from 1.1 on
    # offSize exists from 1.7 on; before that it equals intSize.
    layout = ("int", "off", "format") if minor >= 7 else ("int", "format")
    if len(head) < position + len(layout):
        raise bad("it ends inside the header")
    fields = dict(zip(layout, head[position:position + len(layout)], strict=True))
    int_size, off_size = fields["int"], fields.get("off", fields["int"])
    if not 1 <= int_size <= 32 or not 1 <= off_size <= 32:
        raise bad(f"integer size {int_size} / offset size {off_size} out of range")
    if fields["format"] != PG_CUSTOM_FORMAT:
        raise bad(f"archive format {fields['format']}, not custom ({PG_CUSTOM_FORMAT}); use pg_dump -F c")
