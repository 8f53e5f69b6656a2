"""Stream the documents of a mongodump ``.bson`` / ``.bson.gz`` file: whole, valid, bounded, or a DrillFailure.

Why a reader of our own: a restore that silently stops at a torn document would report a smaller
count as if it were the truth, and a document is untrusted input (a declared size of 2 GB, nesting
a thousand levels deep). So documents come out only in whole, validated batches, each within
``limits.max_document_bytes`` and ``limits.max_bson_depth``, and any damage is one line naming the
file and the byte offset.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.errors import BSONError

from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits

CHUNK = 1024 * 1024
# Dates beyond Python's datetime range are valid BSON; decode them as DatetimeMS, not as errors.
VALIDATING_CODEC = CodecOptions(datetime_conversion=DatetimeConversion.DATETIME_AUTO)
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, BSONError)
# Each level of nesting costs a BSON document at least 7 bytes (type, empty key's NUL, length,
# terminator): a document shorter than this cannot be too deep, and is not walked.
BSON_BYTES_PER_LEVEL = 7
FIX_MONGODUMP = "re-run mongodump for this backup, or re-copy the archive"


@dataclass(frozen=True)
class BsonBatch:
    """Consecutive whole documents of a ``.bson`` file, validated by one full decode.

    ``documents`` are the decoded documents (the in-process store takes these as they are);
    ``raw`` holds each document's bytes when they were asked for (a real server takes those);
    ``start`` is the first document's byte offset in the (uncompressed) stream, for messages;
    ``block`` holds the batch's bytes as read and ``spans`` each document's (start, end) in it, so
    a digest hashes the documents' exact bytes without copying them (the decode made ``block``).
    """

    documents: list[dict]
    raw: list[bytes] | None
    start: int = 0
    block: bytes = b""
    spans: tuple[tuple[int, int], ...] = ()


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
        stream = open_maybe_gzip(path)
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
        first = spans[0][0]
        block = self._buffer[first:spans[-1][1]]  # a bytes slice: the C decoder is slower on a memoryview
        try:
            documents = bson.decode_all(block, VALIDATING_CODEC)
        except PARSE_ERRORS:
            documents = self._decode_one_by_one(memoryview(self._buffer), spans)
        for document, (start, end) in zip(documents, spans):
            if end - start >= self._walk_from_bytes and _too_deep(document, self._limits.max_bson_depth):
                raise self._fail(f"the document at byte {self._base + start}{self._unit} is nested deeper than "
                                 f"{self._limits.name('max_bson_depth')} levels (MongoDB refuses it)")
        raw = [self._buffer[start:end] for start, end in spans] if self._raw else None
        return BsonBatch(documents, raw, self._base + first, block,
                         tuple((start - first, end - first) for start, end in spans))

    def _decode_one_by_one(self, view: memoryview, spans: list[tuple[int, int]]) -> list[dict]:
        """The bulk decode failed: find the document at fault and name its offset."""
        for start, end in spans:
            try:
                bson.decode(view[start:end], codec_options=VALIDATING_CODEC)
            except PARSE_ERRORS as exc:
                raise self._fail(f"document at byte {self._base + start}{self._unit} is not valid BSON: "
                                 f"{first_line(exc)}") from exc
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


def iter_documents(path: Path, limits: Limits | None = None) -> Iterator[tuple[memoryview, dict]]:
    """Each whole, valid document of a ``.bson`` file as (its bytes, decoded), in file order."""
    for batch in iter_bson_batches(path, limits=limits):
        view = memoryview(batch.block)
        for (start, end), document in zip(batch.spans, batch.documents):
            yield view[start:end], document


def open_maybe_gzip(path: Path) -> BinaryIO:
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
                           f"of the uncompressed stream ({first_line(exc)})", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except OSError as exc:
        raise DrillFailure(f"cannot read BSON at byte {offset}: {exc.strerror or exc}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    return b"".join(parts)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
