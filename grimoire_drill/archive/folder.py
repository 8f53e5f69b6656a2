"""Backup trees on disk: the one walker of the project, and verifying an already extracted folder.

Why one walker: a backup tree is as untrusted as the archive it came from. A symlink loop
(``a -> b``, ``b -> a``), a link to ``..`` or to ``/`` would make a walk that follows links
endless or lead it out of the backup, so every walk of a backup tree (the digest of a
``backup_*`` folder, its size, the uploads the drill looks up) goes through :func:`walk_tree`,
which never enters a link, and :func:`regular_files`, which counts a link only when it lands on
a regular file inside the same tree.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from grimoire_drill.archive.guard import FIX_UNSAFE, quoted
from grimoire_drill.archive.stream import CHUNK, Progress, Ticker
from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits
from grimoire_drill.text import quote


@dataclass(frozen=True)
class Extracted:
    """What the single pass (or the check of a ``backup_*`` folder) produced and measured."""

    root: Path
    sha256: str
    size_bytes: int
    members: int
    bytes_extracted: int
    seconds: float


def walk_tree(root: Path) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative posix path, DirEntry) for everything under root, never following symlinks.

    Links are entries, not folders to enter, so a link loop (``a -> b``, ``b -> a``) or a link
    to ``..`` cannot make a walk endless or lead it out of the tree.
    """
    stack = [(Path(root), "")]
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = f"{prefix}{entry.name}"
                yield rel, entry
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))


def folder_size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (links not followed)."""
    return sum(entry.stat(follow_symlinks=False).st_size for _rel, entry in walk_tree(root)
               if entry.is_file(follow_symlinks=False))


def regular_files(root: Path) -> frozenset[str]:
    """Relative paths of the regular files under ``root``, and of the links to one inside it.

    A link to another file of the tree is that file (the application serves it); a link that
    dangles, loops or lands outside ``root`` is not a file of the tree.
    """
    top = os.path.realpath(root) + os.sep
    return frozenset(rel for rel, entry in walk_tree(root)
                     if entry.is_file(follow_symlinks=False) or _links_inside(entry, top))


def _links_inside(entry: os.DirEntry, top: str) -> bool:
    """A symlink to a regular file under ``top``; a loop (``a -> b``, ``b -> a``) or a dangling link is not."""
    try:
        return entry.is_file() and os.path.realpath(entry.path, strict=True).startswith(top)
    except OSError:
        return False


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
    ticker = Ticker(progress, total)
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


def verify_folder(root: Path, progress: Progress | None, limits: Limits) -> Extracted:
    """A ``backup_*`` folder as the pass's result: nothing copied, its tree digest as its sha256."""
    started = time.monotonic()
    try:
        digest, size, entries = tree_digest(root, progress, limits)
    except OSError as exc:
        raise DrillFailure(f"cannot read the backup folder: {quote(str(exc), limits.max_quoted_chars)}",
                           where=str(root),
                           fix="re-copy the backup folder") from exc
    return Extracted(root=root, sha256=digest, size_bytes=size, members=entries,
                     bytes_extracted=size, seconds=time.monotonic() - started)
