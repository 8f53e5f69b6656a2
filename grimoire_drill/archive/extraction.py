"""The one streaming pass: hash, decrypt, inflate, judge and write each member, in one read.

Why one pass, and why each stage is where it is, is the package's docstring
(:mod:`grimoire_drill.archive`). This module wires the stages together and turns what each
raises into one verdict: a :class:`DrillFailure` when the archive is bad, a
:class:`HarnessError` when this machine could not unpack it. It also reads ``backup_info.txt``,
the one file of the tree the pass itself interprets.
"""

from __future__ import annotations

import errno
import os
import tarfile
import time
from pathlib import Path

from zlib_ng import zlib_ng

from grimoire_drill.archive.folder import Extracted, verify_folder
from grimoire_drill.archive.gpg import GpgDecryption
from grimoire_drill.archive.guard import HeaderBounds, InflateBudget, MemberGuard, Unpacker
from grimoire_drill.archive.locate import FIX_PERMISSION, FIX_RECOPY, BackupRef
from grimoire_drill.archive.remote import FIX_TRANSFER, RemoteReader
from grimoire_drill.archive.stream import (
    Corrupt,
    HashingReader,
    Inflater,
    Progress,
    SourceReadError,
    TarFeed,
    Ticker,
    describe,
)
from grimoire_drill.archive.writer import FileWriter, write_failure
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits

BLOCK = tarfile.BLOCKSIZE


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
        return verify_folder(ref.path, progress, limits)
    if ref.kind == "tar.gz.gpg" and passphrase is None:
        raise HarnessError(
            "the archive is encrypted and no passphrase was given",
            where=ref.where,
            fix="pass --passphrase-file FILE or set GRIMOIRE_DRILL_PASSPHRASE",
        )
    return _extract_archive(ref, Path(dest), passphrase, limits, progress, run_tags or {})



# --------------------------------------------------------------------------- the pass


def open_source(ref: BackupRef, limits: Limits) -> tuple[HashingReader, RemoteReader | None]:
    """The one reader of the archive's bytes: a local file, or the stored object streamed (``archive.remote``).

    The seam where an archive is opened: everything after it reads a stream, so an off-site object
    goes through the same pass as a file. The remote reader is returned too, to compare the
    store's checksum once the stream is read to its end. Closed by ``HashingReader.close``.
    """
    if ref.remote is not None:
        remote = ref.remote.open_reader(limits)  # opens lazily: a failure to connect is a transfer error
        return HashingReader(remote), remote
    try:
        return HashingReader(open(ref.path, "rb")), None
    except OSError as exc:
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        raise DrillFailure(f"cannot open the archive: {exc.strerror}", where=ref.where,
                           fix=FIX_PERMISSION if denied else FIX_RECOPY) from exc



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
    where = ref.where
    source, remote = open_source(ref, limits)
    ticker = Ticker(progress, ref.size_bytes)
    gpg: GpgDecryption | None = None
    inflater: Inflater | None = None
    try:
        if ref.kind == "tar.gz.gpg":
            assert passphrase is not None
            gpg = GpgDecryption(source, passphrase, where, dest, run_tags)
            inflater = Inflater(gpg.stdout.read)  # gpg's feeder thread does the hashing
        else:
            inflater = Inflater(source.read)
        budget = InflateBudget(where, ref.size_bytes, limits)
        feed = TarFeed(inflater, lambda: ticker.tick(source.bytes_read), budget.check,
                        max_read=max(FileWriter.SMALL, limits.max_header_bytes + BLOCK))
        try:
            members, written, budget.tar_end = _unpack(feed, ref, dest, limits)
            feed.drain()  # at most limits.max_trailing_bytes more: budget.check refuses the rest
            inflater.close()
            if gpg is not None:
                gpg.finish(drain_limit=0)
            source.drain()
            if remote is not None:
                remote.verify(source.sha256.hexdigest())  # the store's own checksum, of the same bytes
        except DATA_ERRORS as exc:
            if gpg is not None:
                inflater.close()  # it reads gpg's output, which finish() drains
                gpg.finish(drain_limit=limits.max_trailing_bytes)
            raise DrillFailure(f"archive is truncated or corrupt at byte {source.bytes_read} "
                               f"({describe(exc)})", where=where, fix=FIX_RECOPY) from exc
        except SourceReadError as exc:
            raise DrillFailure(str(exc), where=where, fix=FIX_RECOPY) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HarnessError(f"disk full while extracting into {dest}", where=str(dest),
                                   fix="free space there or extract into a bigger temporary folder") from exc
            raise HarnessError(f"cannot write the extracted files: {exc}", where=str(dest),
                               fix="extract into a writable temporary folder") from exc
    except Exception as exc:
        if source.transfer_error is None:
            raise
        # A cut transfer looks like a truncated archive, a gpg error or a bad tar downstream: none is the backup's.
        raise HarnessError(f"could not read the stored object: {source.transfer_error}", where=where,
                           fix=FIX_TRANSFER) from exc
    finally:
        if inflater is not None:
            inflater.stop()
        if gpg is not None:
            gpg.close()  # ends gpg, so a read of its output on the inflater's thread returns
        if inflater is not None:
            inflater.close()
        source.close()
    if not root.is_dir():
        raise DrillFailure(f"the archive holds no {ref.name}/ folder", where=where,
                           fix=FIX_RECOPY)
    ticker.done(source.bytes_read)
    return Extracted(root=root, sha256=source.sha256.hexdigest(), size_bytes=source.bytes_read,
                     members=members, bytes_extracted=written, seconds=time.monotonic() - started)


def _unpack(feed: TarFeed, ref: BackupRef, dest: Path, limits: Limits) -> tuple[int, int, int]:
    """Judge and write each member in stream order; then insist on the end-of-archive marker.

    Returns (members, bytes of regular files, stream offset just past the end-of-archive marker).
    """
    guard = MemberGuard(ref.where, ref.name, ref.size_bytes, limits, dest)

    def data_filter(member: tarfile.TarInfo) -> tarfile.TarInfo:
        """tarfile's own rules, the second layer behind the guard's."""
        try:
            return tarfile.data_filter(member, str(dest))
        except tarfile.FilterError as exc:
            raise guard.unsafe(member, str(exc)) from exc

    tar = Unpacker(feed, HeaderBounds(limits, ref.where))
    files = FileWriter(feed, ref.where, limits, dest, data_filter, guard.unsafe)
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
                failure = write_failure(member, exc, ref.where, limits)
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
