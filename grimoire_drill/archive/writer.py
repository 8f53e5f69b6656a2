"""Writing the archive's regular files on a few threads while the stream is read on.

Why apart: the pass (extraction.py) reads, checks and inflates; this writes, and checks again at
the kernel's word where each file landed. A failed write is the archive's fault (a failed
drill, :func:`write_failure`) or the machine's (raised as it is).
"""

from __future__ import annotations

import errno
import os
import queue
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from grimoire_drill.archive.guard import quoted
from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits

MIB = 1024**2
# Write errors that are about this machine, not about the archive.
HOST_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
FIX_NAME = "rebuild the archive with names the filesystem can hold (scripts/backup-production.sh)"


class Feed(Protocol):
    """The part of the pass's stream the writers use."""

    def seek(self, offset: int) -> int: ...
    def read(self, size: int) -> bytes: ...
    def copy_to(self, write: Callable[[memoryview], object], size: int) -> None: ...


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_failure(member: tarfile.TarInfo, exc: OSError, archive: Path | str, limits: Limits) -> DrillFailure | None:
    """A failed write as the archive's fault (a failed drill), or None: the machine's, raised as it is."""
    if exc.errno in HOST_ERRNOS:
        return None
    # The archive asked for something this filesystem refuses (name too long, …).
    failure = DrillFailure(f"member {quoted(member.name, limits)} cannot be extracted: {exc.strerror or exc}",
                           where=str(archive), fix=FIX_NAME)
    failure.__cause__ = exc
    return failure


CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_END = object()    # a file's last piece has been handed over
FILE_ABORT = object()  # the stream failed inside the file: stop writing it


class FileWriter:
    """Writes the archive's regular files on a few threads while the caller reads the stream on.

    Why: creating and filling files is kernel work that costs as much as reading, checking and
    inflating the stream, and one thread doing all of it was the archive read's bottleneck.
    Each file's data is handed to a writer thread in pieces as the stream yields them (small
    files in one copied piece, big ones as views of the inflated chunks), so the caller moves on
    to the next header while the file is written. At most ``BUDGET`` bytes are in hand at
    once, so memory stays flat. :meth:`settle` waits for every file handed over: the caller does
    so before a link (a hard link needs its whole target) and at the end. A failed write is
    raised on the caller's thread at its next call, as the writer's thread met it.
    """

    THREADS = 2
    BUDGET = 64 * MIB
    FILE_COST = 64 * 1024  # each file in hand counts this much too, so empty files are bounded as well
    SMALL = 1 * MIB        # files up to this size are copied out of the stream in one piece

    def __init__(self, feed: Feed, archive: Path | str, limits: Limits, dest: Path,
                 data_filter: Callable[[tarfile.TarInfo], tarfile.TarInfo],
                 unsafe: Callable[[tarfile.TarInfo, str], DrillFailure]):
        self._feed = feed
        self._archive = archive
        self._limits = limits
        self._dest = os.path.realpath(dest)
        self._data_filter = data_filter
        self._unsafe = unsafe
        self._kernel_paths = os.path.isdir("/proc/self/fd")  # the kernel names an open file's path there
        self._safe_modes: dict[int, int] = {}
        self._changed = threading.Condition()
        self._held = 0  # bytes (and FILE_COSTs) handed to writers and not yet written
        self._failure: BaseException | None = None
        self._stopped = False
        self._pool = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="untar")
        self._parents: set[str] = set()

    def write(self, member: tarfile.TarInfo, path: str) -> None:
        """Hand ``member``'s data (the feed is at its header's end) to a writer of the new file ``path``.

        ``member`` has passed the guard; the writer checks it again (:meth:`_second_layer`) once the
        file is created.
        """
        self._raise_failure()
        parent = os.path.dirname(path)
        if parent not in self._parents:
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                failure = write_failure(member, exc, self._archive, self._limits)
                if failure is None:
                    raise
                raise failure from exc
            self._parents.add(parent)
        self._feed.seek(member.offset_data)
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        self._take(self.FILE_COST)
        last = FILE_ABORT
        try:
            self._pool.submit(self._write_pending, member, path, pieces)
            if member.size <= self.SMALL:
                data = self._feed.read(member.size)
                if len(data) < member.size:
                    raise tarfile.ReadError("unexpected end of data")
                self._hand(pieces, data)
            else:
                self._feed.copy_to(lambda piece: self._hand(pieces, piece), member.size)
            last = FILE_END
        finally:
            pieces.put(last)

    def settle(self) -> None:
        """Wait until every file handed over is written; raise the first write that failed."""
        with self._changed:
            while self._held and self._failure is None:
                self._changed.wait()
        self._raise_failure()

    def close(self) -> None:
        """Skip the files not yet begun (the pass failed or was stopped), wait for the others."""
        self._stopped = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _hand(self, pieces: queue.SimpleQueue, piece: bytes | memoryview) -> None:
        self._take(len(piece))
        pieces.put(piece)

    def _take(self, size: int) -> None:
        with self._changed:
            while self._held and self._held + size > self.BUDGET and self._failure is None:
                self._changed.wait()
            self._raise_failure()
            self._held += size

    def _give(self, size: int) -> None:
        with self._changed:
            self._held -= size
            self._changed.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._changed:
            if self._failure is None:
                self._failure = exc
            self._changed.notify_all()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _second_layer(self, member: tarfile.TarInfo, fd: int) -> int | None:
        """tarfile's data_filter, the second layer behind the guard, for the file just created as
        ``fd``; returns the mode to give it.

        Its two checks, done cheaper with the same meaning. Where the file is: the kernel's own
        answer (``/proc/self/fd``, one call, about the file really created) must be the
        destination plus the member's name; data_filter's two realpath walks (an lstat per path
        component, per member) were 40 % of the CPU of a 1 GB archive read. The mode: data_filter
        itself, run once per distinct mode on a probe member. Without ``/proc``, data_filter runs whole.
        """
        if not self._kernel_paths:
            return self._data_filter(member).mode
        expected = os.path.join(self._dest, member.name)
        landed = os.readlink(f"/proc/self/fd/{fd}")
        if landed != expected:
            raise self._unsafe(member, f"written at {landed}, not at {expected}")
        if member.mode is None:
            return None
        safe = self._safe_modes.get(member.mode)
        if safe is None:
            probe = tarfile.TarInfo("probe")
            probe.mode = member.mode
            safe = self._safe_modes[member.mode] = self._data_filter(probe).mode
        return safe

    def _write_pending(self, member: tarfile.TarInfo, path: str, pieces: queue.SimpleQueue) -> None:
        """On a writer thread: create the file, check it, write its pieces as they come, set mode and mtime.

        The file is created before the second check: the guard has judged the path already,
        O_EXCL|O_NOFOLLOW refuse anything already there, and a file the check refuses is removed
        before the failure is raised.
        """
        fd = None
        piece = None
        mode = None
        try:
            if not self._stopped and self._failure is None:
                fd = os.open(path, CREATE_FLAGS, 0o600)
                try:
                    mode = self._second_layer(member, fd)
                except BaseException:
                    os.close(fd)
                    fd = None
                    os.unlink(path)
                    raise
            while (piece := pieces.get()) is not FILE_END and piece is not FILE_ABORT:
                try:
                    if fd is not None:
                        write_all(fd, piece)
                finally:
                    self._give(len(piece))
            if fd is not None and piece is FILE_END:
                if mode is not None:
                    os.fchmod(fd, mode)
                if member.mtime is not None:
                    os.utime(fd, (member.mtime, member.mtime))
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            failure = write_failure(member, exc, self._archive, self._limits) if isinstance(exc, OSError) else None
            self._fail(exc if failure is None else failure)
            while piece is not FILE_END and piece is not FILE_ABORT:  # let go of the rest
                piece = pieces.get()
                if piece is not FILE_END and piece is not FILE_ABORT:
                    self._give(len(piece))
        finally:
            if fd is not None:
                os.close(fd)
            self._give(self.FILE_COST)
