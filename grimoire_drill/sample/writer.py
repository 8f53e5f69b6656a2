"""The public way to write samples: one throwaway PostgreSQL cluster, any number of backups.

A backup is built in a temp dir next to the output and moved into place only when complete,
so a half-written sample never looks like a backup.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..engines.base import new_run_id
from ..engines.local_postgres import LocalPostgres
from ..errors import HarnessError
from . import data
from .defects import Defect, find_defect
from .job import HOST, PG_USER, Job, Plan
from .mongodump import write_mongodump
from .pack import check_passphrase, encrypt, pack, stamp_times
from .pgdump import write_postgres
from .uploads import write_uploads


class SampleWriter:
    """Writes any number of samples with one throwaway PostgreSQL cluster (initdb once, not per sample).

    ``with SampleWriter() as writer: writer.write(out_dir, defect="missing-index")``
    """

    def __init__(self, *, temp_root: Path | None = None, progress: Callable[[str], None] | None = None):
        self._temp_root = temp_root
        self._progress = progress
        self._pg: LocalPostgres | None = None

    def __enter__(self) -> "SampleWriter":
        pg = LocalPostgres(run_id=new_run_id(), superuser=PG_USER, temp_root=self._temp_root)
        self._pg = pg.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._pg is not None:
            self._pg.__exit__(*exc)
            self._pg = None

    def write(self, out_dir: Path, *, when: datetime | None = None, defect: str | None = None, scale: int = 1,
              gzip_dump: bool = False, seed: int = 0, as_archive: bool = True,
              passphrase: str | None = None) -> Path:
        """One backup in ``out_dir``: ``backup_<id>.tar.gz``, or the ``backup_<id>`` folder.

        With ``passphrase``, ``backup_<id>.tar.gz.gpg``: the archive as an operator encrypts it
        (``gpg --symmetric --cipher-algo AES256``); archive defects damage the .tar.gz inside.
        """
        if self._pg is None:
            raise RuntimeError("use SampleWriter inside a with block")
        chosen = _one_backup_defect(defect)
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if chosen is not None and chosen.archive is not None and not as_archive:
            raise ValueError(f"defect {defect!r} damages the .tar.gz, so it needs as_archive=True")
        check_passphrase(passphrase, as_archive)
        return _write_one(Path(out_dir), self._pg, started=_started_at(when), defect=chosen, scale=scale,
                          gzip_dump=gzip_dump, seed=seed, as_archive=as_archive, passphrase=passphrase,
                          temp_root=self._temp_root, progress=self._progress)


def write_sample(out_dir: Path, *, when: datetime | None = None, defect: str | None = None, scale: int = 1,
                 gzip_dump: bool = False, seed: int = 0, as_archive: bool = True, passphrase: str | None = None,
                 temp_root: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Write one backup into ``out_dir``; return ``backup_<id>.tar.gz`` (or the ``backup_<id>`` folder).

    ``when`` (aware) is when backup-production.sh started: it names the backup. Defaults to an hour ago.
    ``passphrase`` encrypts it: ``backup_<id>.tar.gz.gpg`` (see SampleWriter.write).
    """
    _one_backup_defect(defect)  # fail on a bad name before starting PostgreSQL
    check_passphrase(passphrase, as_archive)
    with SampleWriter(temp_root=temp_root, progress=progress) as writer:
        return writer.write(out_dir, when=when, defect=defect, scale=scale, gzip_dump=gzip_dump, seed=seed,
                            as_archive=as_archive, passphrase=passphrase)


def write_generations(out_dir: Path, *, count: int, newest: datetime | None = None, defect: str | None = None,
                      skip: Collection[int] = (), temp_root: Path | None = None,
                      progress: Callable[[str], None] | None = None, **write_options) -> list[Path]:
    """A nightly series (02:00 UTC, one a day), newest first; ``defect`` applies to the newest only.

    ``newest`` defaults to the last 02:00 UTC that is past; ``write_options`` are SampleWriter.write's
    (``passphrase=`` encrypts every generation). ``skip``: nights (0 = the newest, 1 = the night
    before...) that get no backup, as when the nightly job did not run. A defect of the folder
    (``missing-night``: its ``series``) gives ``count`` and ``skip`` and writes no defect into a backup.
    """
    chosen = find_defect(defect)
    if chosen is not None and chosen.series is not None:
        count, skip, defect, chosen = chosen.series.nights, chosen.series.skip, None, None
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    skipped = set(skip)
    if 0 in skipped or not skipped <= set(range(count)):
        raise ValueError(f"skip must name nights 1..{count - 1} (0 is the newest, which is always written), "
                         f"got {sorted(skipped)}")
    check_passphrase(write_options.get("passphrase"), write_options.get("as_archive", True))
    # A stale newest backup means the nights stopped: the older ones move back with it.
    stopped = chosen.plan.age if chosen is not None else timedelta(0)
    if newest is None:
        now = datetime.now(timezone.utc)
        newest = now.replace(hour=2, minute=0, second=0, microsecond=0)
        if newest > now:
            newest -= timedelta(days=1)
    newest = _started_at(newest)
    with SampleWriter(temp_root=temp_root, progress=progress) as writer:
        return [writer.write(out_dir, when=newest - timedelta(days=night) - (stopped if night else timedelta(0)),
                             defect=defect if night == 0 else None, **write_options)
                for night in range(count) if night not in skipped]


def _one_backup_defect(name: str | None) -> Defect | None:
    """The defect of one backup called ``name``; a defect of the folder (a ``series``) is refused here."""
    chosen = find_defect(name)
    if chosen is not None and chosen.series is not None:
        raise ValueError(f"defect {name!r} is a folder of backups, not one backup: use write_generations")
    return chosen


def _started_at(when: datetime | None) -> datetime:
    if when is None:
        return (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware (UTC), e.g. datetime(..., tzinfo=timezone.utc)")
    return when.astimezone(timezone.utc).replace(microsecond=0)


def _write_one(out_dir: Path, pg: LocalPostgres, *, started: datetime, defect: Defect | None, scale: int,
               gzip_dump: bool, seed: int, as_archive: bool, passphrase: str | None, temp_root: Path | None,
               progress: Callable[[str], None] | None) -> Path:
    """Build in a temp dir next to the output (or in temp_root), move into place only when complete."""
    plan = defect.plan if defect is not None else Plan()
    counts = data.SampleCounts.for_scale(scale, tiny=plan.tiny)
    if plan.recipes is not None:
        counts = replace(counts, recipes=min(plan.recipes, counts.recipes))
    job = Job(seed=seed, started=started - plan.age, counts=counts, plan=plan, gzip_dump=gzip_dump, scale=scale)
    say = progress if progress is not None else (lambda _message: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = (".tar.gz.gpg" if passphrase is not None else ".tar.gz") if as_archive else ""
    target = out_dir / f"backup_{job.backup_id}{suffix}"
    if not as_archive and target.exists():
        raise HarnessError("a backup folder of that name already exists", where=str(target),
                           fix="remove it or choose another --when / output folder")
    work = Path(tempfile.mkdtemp(prefix=".grimoire-drill-sample-", dir=temp_root if temp_root is not None else out_dir))
    try:
        root = work / f"backup_{job.backup_id}"
        for part in ("mongodb", "postgresql", "uploads"):
            (root / part).mkdir(parents=True)
        say(f"backup_{job.backup_id}: MongoDB dump")
        write_mongodump(root, job)
        say(f"backup_{job.backup_id}: PostgreSQL dumps")
        write_postgres(root / "postgresql", job, pg)
        say(f"backup_{job.backup_id}: uploads")
        write_uploads(root / "uploads", job)
        _write_backup_info(root, job)
        stamp_times(root, job.finished)
        if defect is not None and defect.tree is not None:
            defect.tree(root)
        if as_archive:
            built = work / target.name
            say(f"backup_{job.backup_id}: packing")
            pack(root, built, job.finished)
            if defect is not None and defect.archive is not None:
                defect.archive(built)
            if passphrase is not None:
                say(f"backup_{job.backup_id}: encrypting")
                built = encrypt(built, passphrase)
        else:
            built = root
        done_at = datetime.now(timezone.utc) if plan.age else job.finished   # a stale backup copied just now
        os.utime(built, (done_at.timestamp(), done_at.timestamp()))
        _move_into_place(built, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _move_into_place(built: Path, target: Path) -> None:
    """Atomic when the temp dir shares the output's filesystem (the default); a copy otherwise."""
    try:
        os.replace(built, target)
    except OSError:
        shutil.move(str(built), str(target))


def _write_backup_info(root: Path, job: Job) -> None:
    """backup_info.txt exactly as backup-production.sh's heredoc writes it (date's %Z is UTC here)."""
    (root / "backup_info.txt").write_text(
        "Le Grimoire - Production Backup\n"
        "================================\n"
        "\n"
        f"Backup Date: {job.finished:%Y-%m-%d %H:%M:%S} UTC\n"
        f"Backup ID: {job.backup_id}\n"
        "Environment: production\n"
        f"Host: {HOST}\n"
        "\n"
        "Contents:\n"
        "---------\n"
        "- MongoDB dump (BSON format)\n"
        "- PostgreSQL dump (custom format)\n"
        "- PostgreSQL SQL dump (text format)\n"
        "- Uploaded files\n"
        "- Recipes JSON export\n"
        "- Ingredients JSON export\n"
        "\n"
        "Restore Instructions:\n"
        "---------------------\n"
        "See docs/operations/BACKUP_RESTORE.md for restore procedures\n"
        "\n"
        "To restore on a new environment:\n"
        "1. Copy this backup directory to the target server\n"
        f"2. Run: scripts/restore-backup.sh backup_{job.backup_id}\n"
        "\n"
        "To restore specific components:\n"
        "- MongoDB: mongorestore --uri=<MONGODB_URL> mongodb/\n"
        "- PostgreSQL: pg_restore -U <user> -d <database> postgresql/database.backup\n"
        "- Uploads: cp -r uploads/* /path/to/le-grimoire/backend/uploads/\n"
    )

