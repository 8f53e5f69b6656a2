"""Read the JSON exports of a backup (``mongoexport --jsonArray``) as a stream, whatever their size.

Why a reader of our own: an export can be larger than memory and is backup content, so it is
read one element at a time, and a file that is not an array, is cut short, nests past the
parser's guard or holds one element over ``limits.max_export_element_chars`` gives a one-line
:class:`DrillFailure` naming the file, never a partial count.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits

CHUNK = 1024 * 1024
# A scalar ending this close to the end of the buffer might continue in the next chunk.
LOOKAHEAD_CHARS = 64
FIX_EXPORT = "re-run the JSON export (mongoexport --jsonArray), or re-copy the archive"
WHITESPACE = re.compile(r"[ \t\n\r]*")


def count_export(path: Path, limits: Limits | None = None) -> int:
    """Top-level elements of a JSON array file, read incrementally (any size)."""
    return sum(1 for _element in _JsonArrayReader(Path(path), limits).elements())


def iter_export(path: Path, limits: Limits | None = None) -> Iterator[dict]:
    """The objects of a JSON array export, one at a time.

    Values are plain JSON: Extended JSON wrappers such as ``{"$oid": …}`` from mongoexport
    are left as they are, since the app's own export (``json.dump``) has none.
    """
    reader = _JsonArrayReader(Path(path), limits)
    for position, element in enumerate(reader.elements()):
        if not isinstance(element, dict):
            raise DrillFailure(f"element #{position} is a {type(element).__name__}, not a JSON object",
                               where=str(path), fix=FIX_EXPORT)
        yield element


class _JsonArrayReader:
    """Streams ``[v1, v2, …]`` with ``JSONDecoder.raw_decode`` over a sliding text buffer.

    Only the current element and one chunk are held in memory. A value that ends near the end
    of the buffer (``12`` of ``1234``), or fails there, is retried with more text before it is
    accepted or rejected, so chunk boundaries never change the result. A retry waits until the
    buffer has doubled, so a huge element costs linear time, and one over
    ``limits.max_export_element_chars`` is refused. Nesting deeper than the C parser's recursion
    guard is a failure of the file, like any malformed JSON.
    """

    def __init__(self, path: Path, limits: Limits | None = None):
        self._path = path
        self._limits = Limits() if limits is None else limits
        self._json = json.JSONDecoder()
        self._text = codecs.getincrementaldecoder("utf-8-sig")()
        self._buffer = ""
        self._pos = 0
        self._dropped = 0
        self._eof = False

    def elements(self) -> Iterator[Any]:
        try:
            handle = open(self._path, "rb")
        except OSError as exc:
            raise DrillFailure(f"cannot read the export: {exc.strerror or exc}", where=str(self._path),
                               fix=FIX_EXPORT) from exc
        with handle:
            self._handle = handle
            yield from self._array()

    def _array(self) -> Iterator[Any]:
        first = self._next_char()
        if first is None:
            raise self._fail("the file is empty; expected a JSON array")
        if first != "[":
            raise self._fail(f"expected a JSON array ('[') at character {self._where()}, found {first!r}")
        self._pos += 1
        if self._next_char() == "]":
            self._pos += 1
            self._expect_end()
            return
        while True:
            if self._next_char() is None:
                raise self._fail("the file ends inside the array (truncated?)")
            yield self._value()
            separator = self._next_char()
            if separator == ",":
                self._pos += 1
            elif separator == "]":
                self._pos += 1
                self._expect_end()
                return
            elif separator is None:
                raise self._fail("the file ends before the closing ']' (truncated?)")
            else:
                raise self._fail(f"expected ',' or ']' at character {self._where()}, found {separator!r}")

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                maybe_cut = exc.pos >= len(self._buffer) - LOOKAHEAD_CHARS or exc.msg.startswith("Unterminated")
                if self._eof or not maybe_cut:
                    raise self._fail(f"malformed JSON at character {self._dropped + exc.pos}: {exc.msg}") from exc
            except RecursionError as exc:
                raise self._fail(f"unreadable JSON value at character {self._where()}: nested too deeply "
                                 "for the parser's recursion guard") from exc
            except ValueError as exc:
                raise self._fail(f"unreadable JSON value at character {self._where()}: {_first_line(exc)}") from exc
            else:
                if self._eof or end + LOOKAHEAD_CHARS <= len(self._buffer):
                    self._pos = end
                    return value
            held = len(self._buffer) - self._pos
            if held > self._limits.max_export_element_chars:
                raise self._fail(f"the element at character {self._where()} is longer than "
                                 f"{self._limits.name('max_export_element_chars')} characters, or malformed")
            self._fill(2 * held)

    def _expect_end(self) -> None:
        trailing = self._next_char()
        if trailing is not None:
            raise self._fail(f"unexpected {trailing!r} after the closing ']' at character {self._where()}")

    def _next_char(self) -> str | None:
        """Skip whitespace; the next character (not consumed), or None at end of file."""
        while True:
            self._pos = WHITESPACE.match(self._buffer, self._pos).end()
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if self._eof:
                return None
            self._fill()

    def _fill(self, wanted: int = 1) -> None:
        """Drop what was consumed and read until ``wanted`` characters are held (or the file ends).

        The new text is joined once: growing the buffer chunk by chunk would copy it every time.
        """
        self._dropped += self._pos
        parts = [self._buffer[self._pos:]]
        self._pos = 0
        held = len(parts[0])
        try:
            while True:
                chunk = self._handle.read(CHUNK)
                text = self._text.decode(chunk, final=not chunk)
                parts.append(text)
                held += len(text)
                if not chunk or held >= wanted:
                    break
        except UnicodeDecodeError as exc:
            raise self._fail(f"not UTF-8 near character {self._dropped + held}: {exc.reason}") from exc
        except OSError as exc:
            raise self._fail(f"cannot read the export: {exc.strerror or exc}") from exc
        finally:
            self._buffer = "".join(parts)
        self._eof = not chunk

    def _where(self) -> int:
        return self._dropped + self._pos

    def _fail(self, message: str) -> DrillFailure:
        return DrillFailure(message, where=str(self._path), fix=FIX_EXPORT)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
