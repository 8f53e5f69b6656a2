"""Find the newest Le Grimoire backup and unpack it safely, in one streaming pass.

Why one pass: archives run to many gigabytes, and reading one three times (hash, ``tar -tzf``,
extract) triples the drill's I/O. So the file is read once: every byte goes through a SHA-256
hasher, then (for ``.gpg``) through ``gpg --decrypt``, then through zlib-ng (checking each gzip
member's CRC and length trailer, which tarfile's own ``r|gz`` reader skips), then through
:mod:`tarfile`. Reading, hashing and inflating run on a thread of their own, beside the file
writes, as gzip runs beside ``tar -xzf``. Each member is judged *before* it is written.

Why so suspicious: a restore drill unpacks files it did not make, as root, on CI machines.
An archive must not be able to write outside the destination, plant device files or links
that escape, or fill the disk with a decompression bomb. tarfile's ``data_filter`` catches
most of this; the checks here add what it does not (absolute names are rejected rather than
re-rooted, one top folder named like the archive, duplicates, paths through symlinks,
sizes), because the Python this runs on may predate later tarfile fixes. Those rules live in
:mod:`grimoire_drill.archive_guard`, finding the backup in :mod:`grimoire_drill.archive_locate`,
the file writers in :mod:`grimoire_drill.archive_writer`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zlib_ng import zlib_ng

from grimoire_drill import archive_guard
from grimoire_drill.archive_guard import HeaderBounds, InflateBudget, MemberGuard, Unpacker, quoted
from grimoire_drill.archive_locate import (  # noqa: F401 - the archive API, importable from here
    ARCHIVE_KINDS,
    FIX_PERMISSION,
    FIX_RECOPY,
    KIND_PREFERENCE,
    NAME_PATTERN,
    BackupRef,
    find_backups,
    folder_size,
    locate,
    parse_backup_name,
    walk_tree,
)
from grimoire_drill.archive_writer import FileWriter, write_all, write_failure
from grimoire_drill.child_env import child_env
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits
from grimoire_drill.text import quote

GIB = 1024**3
MIB = 1024**2
CHUNK = 1 * MIB
BLOCK = tarfile.BLOCKSIZE
PROGRESS_INTERVAL_SECONDS = 0.5
GPG_EXIT_TIMEOUT_SECONDS = 60

FIX_UNSAFE = archive_guard.FIX_UNSAFE
FIX_PASSPHRASE = (
    "check the passphrase (--passphrase-file or GRIMOIRE_DRILL_PASSPHRASE); "
    "if it is right, the archive is damaged: re-copy it"
)


@dataclass(frozen=True)
class Extracted:
    """What the single pass produced and measured."""

    root: Path
    sha256: str
    size_bytes: int
    members: int
    bytes_extracted: int
    seconds: float


Progress = Callable[[int, int], None]


def read_backup_info(root: Path) -> dict[str, str]:
    """The ``Key: value`` lines of ``backup_info.txt`` ({} when absent).

    Only keys made of letters and spaces count, so the file's list items and numbered
    restore steps ("- MongoDB: mongorestore …", "2. Run: …") are not mistaken for facts.
    """
    path = Path(root) / "backup_info.txt"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([A-Za-z][A-Za-z ]*?)\s*:\s+(\S.*?)\s*", line)
        if match and match.group(1) not in info:
            info[match.group(1)] = match.group(2)
    return info


def extract(
    ref: BackupRef,
    dest: Path,
    *,
    passphrase: str | None = None,
    limits: Limits = Limits(),
    progress: Progress | None = None,
    run_tags: dict[str, str] | None = None,
) -> Extracted:
    """Hash, decrypt, check and unpack ``ref`` into ``dest`` in one read of the file.

    For kind ``"dir"`` nothing is copied: ``root`` is the folder itself and ``sha256`` is a
    tree digest (see :func:`tree_digest`), ``bytes_extracted`` the bytes of its files.
    For archives, ``dest`` may hold a partial tree when this raises.
    ``progress(bytes_read, total_size)`` is called from the caller's thread, at most twice a second.
    ``run_tags`` (``engines.base.run_env``) go into gpg's environment, so a janitor can find it.
    """
    if ref.kind == "dir":
        return _verify_folder(ref, progress, limits)
    if ref.kind == "tar.gz.gpg" and passphrase is None:
        raise HarnessError(
            "the archive is encrypted and no passphrase was given",
            where=str(ref.path),
            fix="pass --passphrase-file FILE or set GRIMOIRE_DRILL_PASSPHRASE",
        )
    return _extract_archive(ref, Path(dest), passphrase, limits, progress, run_tags or {})


def tree_digest(root: Path, progress: Progress | None = None,
                limits: Limits = Limits()) -> tuple[str, int, int]:
    """SHA-256 over a folder's content: (hex digest, bytes of its files, entries).

    The digest covers, in order of relative POSIX path, one line per entry:
    ``D <path>\\n`` for a folder, ``F <path>\\0<sha256 of the file>\\n`` for a file,
    ``L <path>\\0<link target>\\n`` for a symlink. Names and bytes, not mtimes or owners,
    so a copy of the same backup gets the same digest. Links that leave ``root`` and
    special files fail: the restore would read them. Links are never followed into (a loop
    ``a -> b``, ``b -> a`` is two entries), and names are quoted as :func:`quoted` shows them.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    entries = sorted(walk_tree(root), key=lambda item: item[0])
    total = sum(entry.stat(follow_symlinks=False).st_size for _rel, entry in entries
                if entry.is_file(follow_symlinks=False))
    digest = hashlib.sha256()
    done = 0
    ticker = _Ticker(progress, total)
    for rel, entry in entries:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            target = os.readlink(entry.path)
            resolved = os.path.realpath(entry.path)
            if os.path.commonpath([resolved, real_root]) != real_root:
                raise DrillFailure(f"symlink {quoted(rel, limits)} points outside the backup "
                                   f"({quoted(target, limits)})",
                                   where=str(root), fix=FIX_UNSAFE)
            digest.update(b"L " + os.fsencode(rel) + b"\0" + os.fsencode(target) + b"\n")
        elif stat.S_ISDIR(mode):
            digest.update(b"D " + os.fsencode(rel) + b"\n")
        elif stat.S_ISREG(mode):
            file_hash = hashlib.sha256()
            with open(entry.path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    file_hash.update(chunk)
                    done += len(chunk)
                    ticker.tick(done)
            digest.update(b"F " + os.fsencode(rel) + b"\0" + file_hash.hexdigest().encode() + b"\n")
        else:
            raise DrillFailure(f"{quoted(rel, limits)} is a device, fifo or socket, not backup data",
                               where=str(root), fix=FIX_UNSAFE)
    ticker.done(done)
    return digest.hexdigest(), total, len(entries)


# --------------------------------------------------------------------------- the pass


class _Ticker:
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


class _SourceReadError(Exception):
    """The archive file itself could not be read (I/O error), kept apart from write errors."""


class _HashingReader:
    """The one reader of the archive file: every byte is hashed and counted as it passes."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")  # closed by close(), once the pass is over
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        try:
            data = self._file.read(size)
        except OSError as exc:
            raise _SourceReadError(f"could not read the archive at byte {self.bytes_read}: "
                                   f"{exc.strerror}") from exc
        self.sha256.update(data)
        self.bytes_read += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        self._file.close()


_END = object()  # the inflater's "no more data" item


def _gunzip(read: Callable[[int], bytes]) -> Iterator[bytes]:
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


class _Inflater:
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
            for chunk in _gunzip(self._read):
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


class _TarFeed:
    """The inflated tar stream as the forward-only file tarfile reads; remembers the recent bytes.

    tarfile reads the stream at its own pace (headers, then each member's data, which
    :meth:`copy_to` writes straight from the inflated chunks). Seeking ahead skips; seeking
    back works only within the bytes kept.

    tarfile ends quietly at a missing, truncated or invalid header after the first member, so
    a tar cut at a member boundary looks complete. Keeping the last KEEP bytes lets us check
    that the end-of-archive marker really is there.
    """

    KEEP = 64 * 1024

    def __init__(self, inflater: _Inflater, on_read: Callable[[], None], check: Callable[[int], None],
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
            raise _Corrupt("the tar stream can only be read forwards")
        self._receive(offset, keep_from=offset - self.KEEP)
        if offset < self._kept_from():
            raise _Corrupt(f"lost track of the tar stream at byte {offset}")  # KEEP too small
        self.position = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._max_read:
            raise _Corrupt(f"a read of {size} bytes at byte {self.position} of the tar stream: "
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
            raise _Corrupt(f"lost track of the tar stream at byte {offset}")  # KEEP too small
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


class _GpgDecryption:
    """``gpg --decrypt`` as a pipe stage: a thread feeds it the (hashed) archive, we read plaintext.

    The passphrase goes through its own pipe (``--passphrase-fd``), never argv or the
    environment (gpg's is ``child_env``: none of ours, so not GRIMOIRE_DRILL_PASSPHRASE either);
    gpg runs with a throwaway home and ``--no-autostart`` so no agent is left behind.
    """

    def __init__(self, source: _HashingReader, passphrase: str, archive: Path, scratch: Path,
                 run_tags: dict[str, str]):
        gpg = shutil.which("gpg")
        if gpg is None:
            raise HarnessError("gpg is not installed, so the encrypted archive cannot be read",
                               where=str(archive), fix="install GnuPG (apt-get install gnupg)")
        self._source = source
        self._archive = archive
        self._secret = passphrase
        self._home = tempfile.mkdtemp(prefix=".gnupg-", dir=scratch)
        self._stderr = tempfile.TemporaryFile(dir=self._home)
        self._feed_error: BaseException | None = None
        read_fd, write_fd = os.pipe()
        try:
            write_all(write_fd, passphrase.encode("utf-8") + b"\n")
        finally:
            os.close(write_fd)
        argv = [gpg, "--batch", "--quiet", "--no-tty", "--no-autostart", "--no-permission-warning",
                "--homedir", self._home, "--pinentry-mode", "loopback",
                "--passphrase-fd", str(read_fd), "--decrypt"]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, pass_fds=(read_fd,),
                                          env=child_env(run_tags))
        except OSError as exc:
            self._stderr.close()
            shutil.rmtree(self._home, ignore_errors=True)
            raise HarnessError(f"gpg could not be started: {exc.strerror or exc}", where=str(archive),
                               fix="check the GnuPG installation") from exc
        finally:
            os.close(read_fd)
        self.stdout = self._proc.stdout
        self._feeder = threading.Thread(target=self._feed, name="gpg-feed", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        stdin = self._proc.stdin
        try:
            while chunk := self._source.read(CHUNK):
                stdin.write(chunk)
        except (BrokenPipeError, ValueError):
            pass  # gpg stopped reading; its exit status says why
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._feed_error = exc
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def finish(self, drain_limit: int) -> None:
        """Let gpg run to its end (reading at most ``drain_limit`` more bytes), then judge its exit.

        If gpg still has output past ``drain_limit`` (limits.max_trailing_bytes: a bomb behind a
        corrupt start), it is stopped instead and not judged: the caller's own failure stands.
        """
        remaining = drain_limit
        while remaining > 0 and (chunk := self.stdout.read(min(CHUNK, remaining))):
            remaining -= len(chunk)
        if self.stdout.read(1):
            self._proc.kill()
            self._proc.wait()
            self.stdout.close()
            self._feeder.join()
            return
        self.stdout.close()
        try:
            returncode = self._proc.wait(timeout=GPG_EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            returncode = self._proc.wait()
        self._feeder.join()
        if self._feed_error is not None:
            raise DrillFailure(_describe(self._feed_error), where=str(self._archive), fix=FIX_RECOPY)
        if returncode != 0:
            raise DrillFailure(f"gpg could not decrypt the archive: {self._reason()}",
                               where=str(self._archive), fix=FIX_PASSPHRASE)

    def _reason(self) -> str:
        self._stderr.seek(0)
        lines = [line.strip() for line in
                 self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else "gpg failed without a message"
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return reason.removeprefix("gpg: ")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self.stdout is not None and not self.stdout.closed:
            self.stdout.close()
        self._feeder.join()
        self._stderr.close()
        shutil.rmtree(self._home, ignore_errors=True)


class _Corrupt(Exception):
    """The decompressed stream is not a complete tar archive."""


DATA_ERRORS = (tarfile.TarError, EOFError, zlib_ng.error, _Corrupt)


def _extract_archive(ref: BackupRef, dest: Path, passphrase: str | None, limits: Limits,
                     progress: Progress | None, run_tags: dict[str, str]) -> Extracted:
    started = time.monotonic()
    root = dest / ref.name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create the extraction folder: {exc.strerror}", where=str(dest),
                           fix="pass a writable temporary folder") from exc
    if root.exists() or root.is_symlink():
        raise HarnessError(f"the extraction folder already holds {ref.name}", where=str(dest),
                           fix="extract into an empty folder")
    try:
        source = _HashingReader(ref.path)
    except OSError as exc:
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        raise DrillFailure(f"cannot open the archive: {exc.strerror}", where=str(ref.path),
                           fix=FIX_PERMISSION if denied else FIX_RECOPY) from exc
    ticker = _Ticker(progress, ref.size_bytes)
    gpg: _GpgDecryption | None = None
    inflater: _Inflater | None = None
    try:
        if ref.kind == "tar.gz.gpg":
            assert passphrase is not None
            gpg = _GpgDecryption(source, passphrase, ref.path, dest, run_tags)
            inflater = _Inflater(gpg.stdout.read)  # gpg's feeder thread does the hashing
        else:
            inflater = _Inflater(source.read)
        budget = InflateBudget(ref.path, ref.size_bytes, limits)
        feed = _TarFeed(inflater, lambda: ticker.tick(source.bytes_read), budget.check,
                        max_read=max(FileWriter.SMALL, limits.max_header_bytes + BLOCK))
        try:
            members, written, budget.tar_end = _unpack(feed, ref, dest, limits)
            feed.drain()  # at most limits.max_trailing_bytes more: budget.check refuses the rest
            inflater.close()
            if gpg is not None:
                gpg.finish(drain_limit=0)
            source.drain()
        except DATA_ERRORS as exc:
            if gpg is not None:
                inflater.close()  # it reads gpg's output, which finish() drains
                gpg.finish(drain_limit=limits.max_trailing_bytes)
            raise DrillFailure(f"archive is truncated or corrupt at byte {source.bytes_read} "
                               f"({_describe(exc)})", where=str(ref.path), fix=FIX_RECOPY) from exc
        except _SourceReadError as exc:
            raise DrillFailure(str(exc), where=str(ref.path), fix=FIX_RECOPY) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HarnessError(f"disk full while extracting into {dest}", where=str(dest),
                                   fix="free space there or extract into a bigger temporary folder") from exc
            raise HarnessError(f"cannot write the extracted files: {exc}", where=str(dest),
                               fix="extract into a writable temporary folder") from exc
    finally:
        if inflater is not None:
            inflater.stop()
        if gpg is not None:
            gpg.close()  # ends gpg, so a read of its output on the inflater's thread returns
        if inflater is not None:
            inflater.close()
        source.close()
    if not root.is_dir():
        raise DrillFailure(f"the archive holds no {ref.name}/ folder", where=str(ref.path),
                           fix=FIX_RECOPY)
    ticker.done(source.bytes_read)
    return Extracted(root=root, sha256=source.sha256.hexdigest(), size_bytes=source.bytes_read,
                     members=members, bytes_extracted=written, seconds=time.monotonic() - started)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _unpack(feed: _TarFeed, ref: BackupRef, dest: Path, limits: Limits) -> tuple[int, int, int]:
    """Judge and write each member in stream order; then insist on the end-of-archive marker.

    Returns (members, bytes of regular files, stream offset just past the end-of-archive marker).
    """
    guard = MemberGuard(ref.path, ref.name, ref.size_bytes, limits, dest)

    def data_filter(member: tarfile.TarInfo) -> tarfile.TarInfo:
        """tarfile's own rules, the second layer behind the guard's."""
        try:
            return tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as exc:
            raise guard.unsafe(member, str(exc)) from exc

    tar = Unpacker(feed, HeaderBounds(limits, ref.path))
    files = FileWriter(feed, ref.path, limits, dest, data_filter, guard.unsafe)
    try:
        for member in tar:
            checked = guard.admit(member)
            if checked is None:
                continue
            if checked.isreg() and checked.sparse is None:
                files.write(checked, os.path.join(dest, checked.name))  # checked again on the writer's thread
                continue
            filtered = data_filter(checked)
            if not filtered.isdir():
                files.settle()  # a hard link needs its target written; nothing else is pending then
            try:
                tar.extract(filtered, str(dest), filter="fully_trusted")  # data_filter already ran just above
            except OSError as exc:
                failure = write_failure(member, exc, ref.path, limits)
                if failure is None:
                    raise
                raise failure from exc
        files.settle()
    finally:
        files.close()
    # POSIX ends an archive with two zero blocks; every tar writer in use (GNU, bsdtar, Python) does.
    marker = feed.bytes_at(tar.offset, 2 * BLOCK)
    if marker.count(0) != len(marker):
        raise _Corrupt(f"invalid tar header at byte {tar.offset} of the tar stream")
    if len(marker) < 2 * BLOCK:
        raise _Corrupt(f"tar data ends at byte {feed.position} without its end-of-archive marker")
    guard.check_links(dest)
    return guard.members, guard.total, tar.offset + 2 * BLOCK


def _verify_folder(ref: BackupRef, progress: Progress | None, limits: Limits) -> Extracted:
    started = time.monotonic()
    try:
        digest, size, entries = tree_digest(ref.path, progress, limits)
    except OSError as exc:
        raise DrillFailure(f"cannot read the backup folder: {quote(str(exc), limits.max_quoted_chars)}",
                           where=str(ref.path),
                           fix="re-copy the backup folder") from exc
    return Extracted(root=ref.path, sha256=digest, size_bytes=size, members=entries,
                     bytes_extracted=size, seconds=time.monotonic() - started)
