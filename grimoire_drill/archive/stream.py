"""The archive as a stream: read once and hashed, inflated on a thread of its own, fed to tarfile.

Why apart from the pass (extraction.py): these pieces know bytes, not members. Each bounds what it
holds: the inflater a few chunks ahead, the feed the last KEEP bytes and no read larger than
its ``max_read``, and every chunk it takes is shown to a ``check`` (the inflate budget).
"""

from __future__ import annotations

import hashlib
import os
import queue
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from zlib_ng import zlib_ng

MIB = 1024**2
CHUNK = 1 * MIB
PROGRESS_INTERVAL_SECONDS = 0.5

Progress = Callable[[int, int], None]  # (bytes done, bytes in all), called from the caller's thread


class Ticker:
    """Rate-limits progress callbacks so a fast disk does not drown the caller."""

    def __init__(self, progress: Progress | None, total: int):
        self._progress = progress
        self._total = total
        self._last = float("-inf")

    def tick(self, done: int) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            self._progress(done, self._total)

    def done(self, done: int) -> None:
        if self._progress is not None:
            self._progress(done, self._total)


def describe(exc: BaseException) -> str:
    """An exception as a message's tail: its text, or its type when it has none."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


class TransferError(Exception):
    """An off-site object could not be read to its end over the network: we could not test it (exit 2)."""


TRANSFER_ERRORS = (TransferError,)


class SourceReadError(Exception):
    """The archive file itself could not be read (I/O error), kept apart from write errors."""


class ReadableStream(Protocol):
    """What the pass reads: a local file, or a remote object's reader (``archive.remote``)."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class HashingReader:
    """The one reader of the archive: every byte is hashed and counted as it passes.

    It takes an open stream rather than a path, so an off-site object is read by the same pass
    as a local file. A :class:`TransferError` from it (the network, not the backup) is kept in
    ``transfer_error``: whatever the stages downstream make of a cut stream, the verdict is "could
    not test", never "backup bad".
    """

    def __init__(self, stream: ReadableStream):
        self._file = stream  # closed by close(), once the pass is over
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        self.transfer_error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        try:
            data = self._file.read(size)
        except OSError as exc:
            raise SourceReadError(f"could not read the archive at byte {self.bytes_read}: "
                                   f"{exc.strerror}") from exc
        except TRANSFER_ERRORS as exc:
            self.transfer_error = exc
            raise
        self.sha256.update(data)
        self.bytes_read += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        self._file.close()


_END = object()  # the inflater's "no more data" item


def gunzip(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The inflated bytes of a gzip stream, at most CHUNK at a time, judged as :mod:`gzip` judges them.

    Several members in a row are one stream, zero padding after a member is skipped, and zlib
    checks each member's CRC and length trailer; a stream that stops inside a member raises
    EOFError, anything else that is not gzip raises zlib_ng.error. zlib-ng is zlib's API and
    checks, inflating twice as fast (2.5 s against 5.1 s for a 1 GB archive on the bench machine).
    """
    inflater = None  # the current member's decompressor; None between members
    started = False
    while data := read(CHUNK):
        while data:
            if inflater is None:
                if started:
                    data = data.lstrip(b"\0")
                    if not data:
                        break
                inflater = zlib_ng.decompressobj(wbits=31)  # 31: gzip header and trailer
                started = True
            while True:
                out = inflater.decompress(data, CHUNK)
                if out:
                    yield out
                data = inflater.unconsumed_tail
                # A full CHUNK out with no input left may mean zlib still holds output back.
                if inflater.eof or (not data and len(out) < CHUNK):
                    break
            if inflater.eof:
                data = inflater.unused_data
                inflater = None
    if inflater is not None:
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")


class Inflater:
    """Reads and inflates the archive on a thread of its own, a few chunks ahead of tarfile.

    Why: hashing and inflating cost as much as creating the files, and zlib, hashlib and file
    reads let go of the GIL on big buffers, so they overlap with the main thread's writes (as
    gzip runs in its own process beside ``tar -xzf``). The queue is bounded, so memory stays
    flat; an error on the thread is handed over as it is and raised where tarfile reads.
    """

    AHEAD_CHUNKS = 8

    def __init__(self, read: Callable[[int], bytes]):
        self._read = read
        self._queue: queue.Queue = queue.Queue(maxsize=self.AHEAD_CHUNKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for chunk in gunzip(self._read):
                self._queue.put(chunk)
                if self._stop.is_set():
                    return
            self._queue.put(_END)
        except BaseException as exc:  # noqa: BLE001 - raised again by get()
            self._queue.put(exc)

    def get(self) -> bytes | None:
        """The next inflated chunk, None at the end of the stream; raises what the thread raised."""
        item = self._queue.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """Ask the thread to end; makes room so it is not left waiting on a full queue."""
        self._stop.set()
        self._empty()

    def close(self) -> None:
        """Stop the thread and wait for it (for gpg, end gpg first: the thread may be reading it)."""
        self.stop()
        while self._thread.is_alive():
            self._thread.join(timeout=0.05)
            self._empty()

    def _empty(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass


class TarFeed:
    """The inflated tar stream as the forward-only file tarfile reads; remembers the recent bytes.

    tarfile reads the stream at its own pace (headers, then each member's data, which
    :meth:`copy_to` writes straight from the inflated chunks). Seeking ahead skips; seeking
    back works only within the bytes kept.

    tarfile ends quietly at a missing, truncated or invalid header after the first member, so
    a tar cut at a member boundary looks complete. Keeping the last KEEP bytes lets us check
    that the end-of-archive marker really is there.
    """

    KEEP = 64 * 1024

    def __init__(self, inflater: Inflater, on_read: Callable[[], None], check: Callable[[int], None],
                 max_read: int):
        self._inflater = inflater
        self._on_read = on_read
        self._check = check        # judges the stream's length so far (raises past a limit)
        self._max_read = max_read  # the most any one read may ask for: nothing is buffered unbounded
        self._chunks: list[tuple[int, bytes]] = []  # (offset in the stream, bytes), in order
        self._end = 0  # stream offset just past the last chunk received
        self._finished = False
        self.position = 0

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise Corrupt("the tar stream can only be read forwards")
        self._receive(offset, keep_from=offset - self.KEEP)
        if offset < self._kept_from():
            raise Corrupt(f"lost track of the tar stream at byte {offset}")  # KEEP too small
        self.position = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._max_read:
            raise Corrupt(f"a read of {size} bytes at byte {self.position} of the tar stream: "
                           "tarfile asked for more than any header or small file holds")
        until = self.position + size
        self._receive(until, keep_from=self.position - self.KEEP)
        data = self._slice(self.position, size)
        self.position += len(data)
        return data

    def copy_to(self, write: Callable[[memoryview], object], size: int) -> None:
        """Write the next ``size`` bytes with ``write``, chunk by chunk, without joining them."""
        end = self.position + size
        while self.position < end:
            self._receive(self.position + 1, keep_from=self.position - self.KEEP)
            start, chunk = self._chunks[-1] if self._chunks else (self._end, b"")
            if self.position >= self._end:
                raise tarfile.ReadError("unexpected end of data")
            if self.position < start:  # the position is in an older kept chunk
                start, chunk = next((s, c) for s, c in self._chunks if s + len(c) > self.position)
            piece = memoryview(chunk)[self.position - start: min(end, start + len(chunk)) - start]
            write(piece)
            self.position += len(piece)

    def bytes_at(self, offset: int, length: int) -> bytes:
        """The decompressed bytes at [offset, offset+length), reading on if needed; short at end of data."""
        self._receive(offset + length, keep_from=min(offset, self.position) - self.KEEP)
        if offset < self._kept_from():
            raise Corrupt(f"lost track of the tar stream at byte {offset}")  # KEEP too small
        return self._slice(offset, length)

    def drain(self) -> None:
        self.position = self._end
        while not self._finished:
            self._receive(self._end + 1, keep_from=self._end - self.KEEP)
            self.position = self._end

    def _kept_from(self) -> int:
        return self._chunks[0][0] if self._chunks else self._end

    def _receive(self, until: int | None, keep_from: int) -> None:
        """Take chunks until the stream reaches ``until`` (None: its end), keeping bytes from ``keep_from``."""
        while not self._finished and (until is None or self._end < until):
            chunk = self._inflater.get()
            if chunk is None:
                self._finished = True
                break
            self._chunks.append((self._end, chunk))
            self._end += len(chunk)
            self._check(self._end)
            # Forget what lies wholly before keep_from, always keeping the newest chunk.
            while len(self._chunks) > 1 and self._chunks[1][0] <= keep_from:
                self._chunks.pop(0)
            self._on_read()

    def _slice(self, offset: int, length: int) -> bytes:
        pieces = []
        end = min(offset + length, self._end)
        for start, chunk in self._chunks:
            if start + len(chunk) <= offset:
                continue
            if start >= end:
                break
            pieces.append(chunk[max(offset - start, 0): end - start])
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class Corrupt(Exception):
    """The decompressed stream is not a complete tar archive."""
