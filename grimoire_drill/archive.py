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
the file writers in :mod:`grimoire_drill.archive_writer`, the byte stream (hash, inflate, the
forward-only feed tarfile reads) in :mod:`grimoire_drill.archive_stream`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
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
from grimoire_drill.archive_stream import CHUNK, Corrupt, HashingReader, Inflater, SourceReadError, TarFeed
from grimoire_drill.archive_writer import FileWriter, write_all, write_failure
from grimoire_drill.child_env import child_env
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits
from grimoire_drill.text import quote

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


def read_backup_info(root: Path, limits: Limits | None = None) -> dict[str, str]:
    """The ``Key: value`` lines of ``backup_info.txt`` ({} when absent).

    Only keys made of letters and spaces count, so the file's list items and numbered
    restore steps ("- MongoDB: mongorestore …", "2. Run: …") are not mistaken for facts.
    The file comes from the backup: it is read bounded (``limits.max_text_file_bytes``, lines
    of ``limits.max_line_chars``) and parsed with string operations, never a backtracking regex.
    """
    limits = Limits() if limits is None else limits
    path = Path(root) / "backup_info.txt"
    try:
        with open(path, "rb") as handle:
            data = handle.read(limits.max_text_file_bytes + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise DrillFailure(f"cannot read backup_info.txt: {exc.strerror or exc}", where=str(path),
                           fix="re-copy the archive; backup-production.sh writes backup_info.txt as a text file") from exc
    if len(data) > limits.max_text_file_bytes:
        raise DrillFailure(f"backup_info.txt is larger than {limits.name('max_text_file_bytes')} bytes",
                           where=str(path), fix="check the backup job's metadata step; or raise the limit in [limits]")
    info: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if len(line) > limits.max_line_chars:
            raise DrillFailure(f"line {number} of backup_info.txt is longer than {limits.name('max_line_chars')} "
                               "characters", where=str(path),
                               fix="check the backup job's metadata step; or raise the limit in [limits]")
        fact = _info_fact(line)
        if fact is not None and fact[0] not in info:
            info[fact[0]] = fact[1]
    return info


INFO_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ")


def _info_fact(line: str) -> tuple[str, str] | None:
    """``Key: value`` -> (key, value): the key letters and spaces starting with a letter, at least one
    blank after the colon, the value stripped and not empty. Linear in the line, whatever it holds."""
    key, colon, rest = line.partition(":")
    key = key.rstrip()
    if not colon or not key or key[0] == " " or not INFO_KEY_CHARS.issuperset(key):
        return None
    value = rest.strip()
    if not rest[:1].isspace() or not value:
        return None
    return key, value


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


class _GpgDecryption:
    """``gpg --decrypt`` as a pipe stage: a thread feeds it the (hashed) archive, we read plaintext.

    The passphrase goes through its own pipe (``--passphrase-fd``), never argv or the
    environment (gpg's is ``child_env``: none of ours, so not GRIMOIRE_DRILL_PASSPHRASE either);
    gpg runs with a throwaway home and ``--no-autostart`` so no agent is left behind.
    """

    def __init__(self, source: HashingReader, passphrase: str, archive: Path, scratch: Path,
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


DATA_ERRORS = (tarfile.TarError, EOFError, zlib_ng.error, Corrupt)


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
        source = HashingReader(ref.path)
    except OSError as exc:
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        raise DrillFailure(f"cannot open the archive: {exc.strerror}", where=str(ref.path),
                           fix=FIX_PERMISSION if denied else FIX_RECOPY) from exc
    ticker = _Ticker(progress, ref.size_bytes)
    gpg: _GpgDecryption | None = None
    inflater: Inflater | None = None
    try:
        if ref.kind == "tar.gz.gpg":
            assert passphrase is not None
            gpg = _GpgDecryption(source, passphrase, ref.path, dest, run_tags)
            inflater = Inflater(gpg.stdout.read)  # gpg's feeder thread does the hashing
        else:
            inflater = Inflater(source.read)
        budget = InflateBudget(ref.path, ref.size_bytes, limits)
        feed = TarFeed(inflater, lambda: ticker.tick(source.bytes_read), budget.check,
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
        except SourceReadError as exc:
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


def _unpack(feed: TarFeed, ref: BackupRef, dest: Path, limits: Limits) -> tuple[int, int, int]:
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
        raise Corrupt(f"invalid tar header at byte {tar.offset} of the tar stream")
    if len(marker) < 2 * BLOCK:
        raise Corrupt(f"tar data ends at byte {feed.position} without its end-of-archive marker")
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
