"""Which backup to drill: names, not mtimes, and the newest one decides.

Why strict: a folder of backups is what the nightly job left. If the newest entry named like a
backup cannot be read (a dangling link, a folder where an archive should be, a fifo, zero bytes,
no permission), last night's backup is bad, and drilling an older one instead would report a
pass for a backup nobody can restore. So ``locate`` judges the newest candidate and fails naming
it; it never falls back to an older one.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from grimoire_drill.archive.folder import folder_size
from grimoire_drill.errors import DrillFailure, HarnessError
from grimoire_drill.limits import Limits

if TYPE_CHECKING:
    from grimoire_drill.archive.remote import RemoteObject

NAME_PATTERN = re.compile(r"backup_(\d{8}_\d{6})")
ARCHIVE_KINDS = ((".tar.gz.gpg", "tar.gz.gpg"), (".tar.gz", "tar.gz"))
# When one backup id exists in several forms, the plain archive is the thing the backup job made.
KIND_PREFERENCE = {"tar.gz": 0, "tar.gz.gpg": 1, "dir": 2}

FIX_RECOPY = "re-copy the archive; check the backup job's disk space"
FIX_PERMISSION = "let the drill's user read the backups (check the file's owner and mode, e.g. chmod o+r)"
FIX_NEWEST = ("repair or remove it (the backup job's last run left it), then drill again; "
              "an older backup is never drilled in its place")


@dataclass(frozen=True)
class BackupRef:
    """One backup as found on disk; ``taken_at`` comes from the name because copies reset mtimes.

    ``remote`` is set for an off-site object (``s3://``, ``sftp://``): ``path`` is then its key on
    the store, and ``where`` the URL messages and reports show (never its userinfo).
    """

    path: Path
    name: str
    backup_id: str
    taken_at: datetime
    kind: str
    size_bytes: int
    remote: RemoteObject | None = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return self.remote.url.shown if self.remote is not None else str(self.path)


@dataclass(frozen=True)
class BackupName:
    """An entry named like a backup, not yet known to be readable (``locate`` judges that)."""

    path: Path
    name: str
    backup_id: str
    taken_at: datetime
    kind: str

    def order(self) -> tuple:
        return (-self.taken_at.timestamp(), KIND_PREFERENCE[self.kind], self.path.name)


def parse_backup_name(name: str, tz: tzinfo = UTC) -> tuple[str, datetime] | None:
    """``backup_YYYYMMDD_HHMMSS`` (optionally ``.tar.gz`` / ``.tar.gz.gpg``) -> (id, aware time).

    The name is the backup host's local ``date``: ``tz`` says which zone that is (UTC by default).

    None for anything else, including impossible dates, so a stray ``backup_latest`` or
    ``backup_20261399_…`` is ignored rather than trusted.
    """
    stem = name
    for suffix, _kind in ARCHIVE_KINDS:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    match = NAME_PATTERN.fullmatch(stem)
    if match is None:
        return None
    backup_id = match.group(1)
    try:
        taken_at = datetime.strptime(backup_id, "%Y%m%d_%H%M%S").replace(tzinfo=tz)
    except ValueError:
        return None
    return backup_id, taken_at


def find_backups(folder: Path | str, tz: tzinfo = UTC, limits: Limits = Limits()) -> list[BackupRef]:
    """Every readable backup in ``folder``, newest first by the timestamp in its name (mtimes ignored).

    Entries named like backups that cannot be read are left out here (``list`` shows what can be
    drilled); :func:`locate` is the one that refuses them when they are the newest. An ``s3://``
    or ``sftp://`` URL is listed by :mod:`~grimoire_drill.archive.remote` under the same rules.
    """
    if _is_url(folder):
        from grimoire_drill.archive.remote import find_remote_backups

        return find_remote_backups(str(folder), tz, limits)
    refs = []
    for candidate in sorted(_candidates(Path(folder), tz), key=BackupName.order):
        try:
            refs.append(_checked(candidate))
        except DrillFailure:
            continue
    return refs


def named_backups(folder: Path, max_names: int, limit_name: str, tz: tzinfo = UTC) -> list[BackupName]:
    """Every backup named in ``folder``, readable or not, one per backup id, newest first.

    Unlike :func:`find_backups`, an entry that cannot be read stays in: ``--generations`` drills
    each one, so a zero-byte or dangling backup fails its own drill instead of being left out of
    an audit. One id in several forms gives the form :func:`locate` would take. More than
    ``max_names`` ids is refused (``limit_name`` says which limit), before anything is sorted.
    """
    if _is_url(folder):
        raise HarnessError("--generations drills a local folder of backups; an s3:// or sftp:// source "
                           "is drilled one backup at a time", where=str(folder),
                           fix="drop --generations (the newest is drilled), or name each object's URL in turn")
    preferred: dict[str, BackupName] = {}
    try:
        for candidate in _candidates(Path(folder), tz):
            known = preferred.get(candidate.backup_id)
            if known is None or candidate.order() < known.order():
                preferred[candidate.backup_id] = candidate
            if len(preferred) > max_names:
                raise DrillFailure(f"more than {limit_name} backups named in the folder", where=str(folder),
                                   fix="prune the folder or raise the limit in [limits] of expectations.toml")
    except PermissionError as exc:
        raise HarnessError(f"cannot list the folder: {exc.strerror}", where=str(folder),
                           fix="run with a user that can read the backups") from exc
    return sorted(preferred.values(), key=BackupName.order)


def locate(target: Path | str, tz: tzinfo = UTC, limits: Limits = Limits()) -> BackupRef:
    """Resolve what the user pointed at: a folder of backups (newest wins), an archive, a backup_* folder.

    An ``s3://`` or ``sftp://`` URL (a folder or one object) is resolved by
    :func:`~grimoire_drill.archive.remote.locate_remote`, under the same name rules and ``limits``.
    """
    if _is_url(target):
        from grimoire_drill.archive.remote import locate_remote

        return locate_remote(str(target), tz, limits)
    target = Path(target)
    if not os.path.lexists(target):
        raise DrillFailure(
            "no such file or folder",
            where=str(target),
            fix="pass the backups folder, a backup_*.tar.gz[.gpg] file or a backup_* folder",
        )
    if not target.is_dir():
        candidate = _candidate(target, tz)
        if candidate is None or candidate.kind == "dir":
            raise DrillFailure(
                "not a backup_YYYYMMDD_HHMMSS.tar.gz or .tar.gz.gpg archive",
                where=str(target),
                fix="pass an archive named as scripts/backup-production.sh names it, or its folder",
            )
        return _checked(candidate)
    direct = _candidate(target, tz)
    if direct is not None:  # a backup_* folder, or a folder named like an archive: refused
        return _checked(direct)
    try:
        candidates = sorted(_candidates(target, tz), key=BackupName.order)
    except PermissionError as exc:
        raise HarnessError(f"cannot list the folder: {exc.strerror}", where=str(target),
                           fix="run with a user that can read the backups") from exc
    if not candidates:
        raise DrillFailure(
            f"no backup_YYYYMMDD_HHMMSS archive in {target}",
            fix="check that the backup job ran and wrote here (BACKUP_DIR of scripts/backup-production.sh)",
        )
    return _checked(candidates[0], newest=True)


def series_ids(target: Path | str, max_backups: int, limit_name: str, tz: tzinfo = UTC,
               limits: Limits = Limits()) -> tuple[str, ...] | None:
    """The backup ids named in the BACKUPS folder, oldest first; None when BACKUPS is one backup.

    Names only: the older archives are never opened or stat'ed, so a series is judged without
    reading gigabytes (the newest is :func:`locate`'s to judge). Hostile names are ignored as in
    :func:`locate`; more than ``max_backups`` backup names is refused (``limit_name`` says which limit).
    """
    if _is_url(target):
        from grimoire_drill.archive.remote import remote_series_ids

        return remote_series_ids(str(target), max_backups, limit_name, tz, limits)
    target = Path(target)
    if not target.is_dir() or _candidate(target, tz) is not None:
        return None
    ids: set[str] = set()
    try:
        for candidate in _candidates(target, tz):
            ids.add(candidate.backup_id)
            if len(ids) > max_backups:
                raise DrillFailure(f"more than {limit_name} backups named in the folder", where=str(target),
                                   fix="prune the folder (BACKUP_RETENTION_DAYS of backup-production.sh) "
                                       "or raise the limit in [limits] of expectations.toml")
    except PermissionError as exc:
        raise HarnessError(f"cannot list the folder: {exc.strerror}", where=str(target),
                           fix="run with a user that can read the backups") from exc
    return tuple(sorted(ids))


# --------------------------------------------------------------------------- candidates


def _is_url(target: object) -> bool:
    """An off-site source (``s3://``, ``sftp://``): the one test of it, kept in remote.py."""
    from grimoire_drill.archive.remote import is_remote

    return is_remote(target)


def candidate_from_name(name: str, tz: tzinfo = UTC) -> BackupName | None:
    """What a listed name says the entry is, by the same rules as a folder's entries (None: not a backup).

    For listings that are not a local folder (a bucket, an SFTP folder): the path is the name alone.
    """
    if not name or "/" in name or name in (".", ".."):
        return None
    return _candidate(PurePosixPath(name), tz)  # type: ignore[arg-type]


def _candidate(path: Path, tz: tzinfo) -> BackupName | None:
    """What the name says the entry is (whatever it really is on disk), or None: not a backup name."""
    name = path.name
    kind, stem = "dir", name
    for suffix, suffix_kind in ARCHIVE_KINDS:
        if name.endswith(suffix):
            kind, stem = suffix_kind, name[: -len(suffix)]
            break
    parsed = parse_backup_name(stem, tz)
    if parsed is None or stem != f"backup_{parsed[0]}":
        return None
    return BackupName(path, stem, parsed[0], parsed[1], kind)


def _candidates(folder: Path, tz: tzinfo) -> Iterator[BackupName]:
    for entry in folder.iterdir():
        candidate = _candidate(entry, tz)
        if candidate is not None:
            yield candidate


def _checked(candidate: BackupName, newest: bool = False) -> BackupRef:
    """The candidate as a BackupRef, or a DrillFailure naming it and what is wrong with it."""
    path = candidate.path
    fix = FIX_NEWEST if newest else FIX_RECOPY

    def refuse(reason: str, fix: str = fix) -> DrillFailure:
        which = "the newest backup " if newest else ""
        return DrillFailure(f"{which}cannot be drilled: {reason}", where=str(path), fix=fix)

    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise refuse(f"a dangling symlink (to {os.readlink(path)})") from None
        raise refuse("it vanished while the folder was read") from None
    except OSError as exc:
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        raise refuse(f"cannot be read: {exc.strerror}", FIX_PERMISSION if denied else fix) from exc
    if candidate.kind == "dir":
        if not stat.S_ISDIR(info.st_mode):
            raise refuse("named like a backup folder, but it is not a folder")
        try:
            size = folder_size(path)
        except OSError as exc:
            denied = exc.errno in (errno.EACCES, errno.EPERM)
            raise refuse(f"cannot read the backup folder: {exc.strerror}",
                         FIX_PERMISSION if denied else fix) from exc
        return BackupRef(path, candidate.name, candidate.backup_id, candidate.taken_at, "dir", size)
    if stat.S_ISDIR(info.st_mode):
        raise refuse("a folder named like an archive, not an archive file")
    if not stat.S_ISREG(info.st_mode):
        raise refuse("not a regular file (a fifo, socket or device)")
    if info.st_size == 0:
        raise refuse("zero bytes: the backup job wrote nothing")
    try:
        # O_NONBLOCK: if the file was swapped for a fifo since the stat, the open must not hang.
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError as exc:
        denied = exc.errno in (errno.EACCES, errno.EPERM)
        raise refuse(f"cannot open the archive: {exc.strerror}", FIX_PERMISSION if denied else fix) from exc
    return BackupRef(path, candidate.name, candidate.backup_id, candidate.taken_at, candidate.kind,
                     info.st_size)
