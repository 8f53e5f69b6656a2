"""A look into a backup without unpacking it: member sizes from the tar headers, and the few members asked for.

Why: comparing the drilled backup with the one before it needs that one's sizes (each ``.bson``, the
pg dump, the uploads) and its mongodump metadata, never a restore. That archive is as untrusted as
the drilled one, so it goes through the same pieces as the pass (gpg, the bounded inflate, the
header bounds, the member guard: every ``Limits`` applies); member data is skipped unless ``copy``
asks for it, and what is asked for is copied into ``scratch`` (inside the run's temp dir), where
the project's bounded readers (``dump.read_metadata``, ``bson_stream``) read it. Memory holds one
size per member ``size`` chose, at most ``limits.max_generation_entries`` of them.
"""

from __future__ import annotations

import errno
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from zlib_ng import zlib_ng

from grimoire_drill.archive.folder import walk_tree
from grimoire_drill.archive.gpg import GpgDecryption
from grimoire_drill.archive.guard import HeaderBounds, InflateBudget, MemberGuard, Unpacker
from grimoire_drill.archive.locate import FIX_RECOPY, BackupRef
from grimoire_drill.archive.extraction import open_source
from grimoire_drill.archive.stream import Corrupt, Inflater, SourceReadError, TarFeed, describe
from grimoire_drill.archive.writer import FileWriter
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits

BLOCK = tarfile.BLOCKSIZE
DATA_ERRORS = (tarfile.TarError, EOFError, zlib_ng.error, Corrupt)
KEPT_SUFFIXES = (".metadata.json.gz", ".metadata.json", ".bson.gz", ".bson", ".gz")
Chooser = Callable[[str], bool]        # a member's path below the top folder -> wanted?
CopyChooser = Callable[[str, int], bool]  # (path, declared bytes) -> copy it?


@dataclass(frozen=True)
class Survey:
    """What a look into one backup found. Paths are below its top folder (``mongodb/legrimoire/x.bson``).

    ``sizes``: bytes of each regular file ``size`` chose; ``counted``: regular files under each
    prefix asked for; ``copies``: where each member ``copy`` chose can be read (a copy in the
    scratch folder, or the file itself for a ``backup_*`` folder); ``truncated``: more files were
    chosen than ``limits.max_generation_entries``, the rest were not kept.
    """

    sizes: Mapping[str, int] = field(default_factory=dict)
    counted: Mapping[str, int] = field(default_factory=dict)
    copies: Mapping[str, Path] = field(default_factory=dict)
    truncated: bool = False


class _Tally:
    """What the survey keeps while it goes: bounded by ``limits.max_generation_entries``."""

    def __init__(self, size: Chooser, count_under: tuple[str, ...], limits: Limits):
        self.size, self.count_under, self.limits = size, count_under, limits
        self.sizes: dict[str, int] = {}
        self.counted = dict.fromkeys(count_under, 0)
        self.copies: dict[str, Path] = {}
        self.truncated = False

    def saw(self, path: str, size: int) -> None:
        for prefix in self.count_under:
            if path.startswith(prefix):
                self.counted[prefix] += 1
        if self.size(path):
            if len(self.sizes) >= self.limits.max_generation_entries:
                self.truncated = True
            else:
                self.sizes[path] = size

    def survey(self) -> Survey:
        return Survey(dict(self.sizes), dict(self.counted), dict(self.copies), self.truncated)


def survey(ref: BackupRef, scratch: Path, *, size: Chooser, copy: CopyChooser, count_under: tuple[str, ...] = (),
           limits: Limits = Limits(), passphrase: str | None = None,
           run_tags: dict[str, str] | None = None) -> Survey:
    """Sizes, counts and copies of ``ref``'s members in one forward read; raises a DrillFailure naming the
    archive when it is unsafe or unreadable (the caller decides what that means for *its* verdict)."""
    tally = _Tally(size, count_under, limits)
    if ref.kind == "dir":
        return _survey_folder(ref, tally, copy)
    if ref.kind == "tar.gz.gpg" and passphrase is None:
        raise HarnessError("the archive is encrypted and no passphrase was given", where=str(ref.path),
                           fix="pass --passphrase-file FILE or set GRIMOIRE_DRILL_PASSPHRASE")
    scratch.mkdir(parents=True, exist_ok=True)
    return _survey_archive(ref, Path(scratch), tally, copy, passphrase, run_tags or {})


def _survey_folder(ref: BackupRef, tally: _Tally, copy: CopyChooser) -> Survey:
    """A ``backup_*`` folder: its files are already there; links are never followed (``walk_tree``)."""
    for path, entry in sorted(walk_tree(ref.path), key=lambda item: item[0]):
        if entry.is_file(follow_symlinks=False):
            size = entry.stat(follow_symlinks=False).st_size
            tally.saw(path, size)
            if copy(path, size):
                tally.copies[path] = Path(entry.path)
    return tally.survey()


def _survey_archive(ref: BackupRef, scratch: Path, tally: _Tally, copy: CopyChooser, passphrase: str | None,
                    run_tags: dict[str, str]) -> Survey:
    limits = tally.limits
    source, _remote = open_source(ref, limits)
    gpg: GpgDecryption | None = None
    inflater: Inflater | None = None
    try:
        if ref.kind == "tar.gz.gpg":
            assert passphrase is not None
            gpg = GpgDecryption(source, passphrase, ref.path, scratch, run_tags)
            inflater = Inflater(gpg.stdout.read)
        else:
            inflater = Inflater(source.read)
        budget = InflateBudget(ref.path, ref.size_bytes, limits)
        feed = TarFeed(inflater, lambda: None, budget.check,
                       max_read=max(FileWriter.SMALL, limits.max_header_bytes + BLOCK))
        try:
            budget.tar_end = _walk_members(feed, ref, scratch, tally, copy)
            feed.drain()  # at most limits.max_trailing_bytes more: budget.check refuses the rest
            inflater.close()
            if gpg is not None:
                gpg.finish(drain_limit=0)
        except DATA_ERRORS as exc:
            raise DrillFailure(f"archive is truncated or corrupt at byte {source.bytes_read} ({describe(exc)})",
                               where=str(ref.path), fix=FIX_RECOPY) from exc
        except SourceReadError as exc:
            raise DrillFailure(str(exc), where=str(ref.path), fix=FIX_RECOPY) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise HarnessError(f"disk full while copying members into {scratch}", where=str(scratch),
                                   fix="free space there or point --temp-dir at a bigger folder") from exc
            raise
    finally:
        if inflater is not None:
            inflater.stop()
        if gpg is not None:
            gpg.close()
        if inflater is not None:
            inflater.close()
        source.close()
    return tally.survey()


def _walk_members(feed: TarFeed, ref: BackupRef, scratch: Path, tally: _Tally, copy: CopyChooser) -> int:
    """Judge every member as the pass does; keep sizes, copy what is asked; insist on the end marker."""
    guard = MemberGuard(ref.path, ref.name, ref.size_bytes, tally.limits, scratch)
    tar = Unpacker(feed, HeaderBounds(tally.limits, ref.path))
    for member in tar:
        checked = guard.admit(member)
        if checked is None or not checked.isreg():
            continue
        path = checked.name.partition("/")[2]
        tally.saw(path, checked.size)
        if copy(path, checked.size):
            target = scratch / f"{len(tally.copies)}{_kept_suffix(path)}"  # readers go by the suffix (.gz)
            feed.seek(checked.offset_data)
            with open(target, "xb") as handle:
                feed.copy_to(handle.write, checked.size)
            tally.copies[path] = target
    marker = feed.bytes_at(tar.offset, 2 * BLOCK)
    if marker.count(0) != len(marker):
        raise Corrupt(f"invalid tar header at byte {tar.offset} of the tar stream")
    if len(marker) < 2 * BLOCK:
        raise Corrupt(f"tar data ends at byte {feed.position} without its end-of-archive marker")
    return tar.offset + 2 * BLOCK


def _kept_suffix(path: str) -> str:
    """The suffix a copy keeps (never the member's own name: it may be as long as a name can be)."""
    return next((suffix for suffix in KEPT_SUFFIXES if path.endswith(suffix)), "")
