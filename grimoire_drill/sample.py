"""Realistic Le Grimoire backups, clean or with one chosen defect, made the way production makes them.

scripts/backup-production.sh writes ``backup_<id>/`` with a ``mongodump --out`` of the whole server,
a ``pg_dump -F c -b`` plus a plain ``pg_dump`` of ``le_grimoire``, the uploads, two JSON exports and
``backup_info.txt``, then tars it. We do the same: the PostgreSQL dumps come from the real pg_dump of
a throwaway cluster loaded with the app's schema, the MongoDB dump is written in mongodump's own file
format (no MongoDB server can be had here), and every collection streams, so ``scale`` can grow the
archive to gigabytes without holding a collection in memory.

Defects are small, named edits of that process, so every drill check can be shown to fail for the
right reason on a backup that is wrong in exactly one way.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO

import bson
import psycopg
from bson import SON, json_util

from . import sample_data as data
from .child_env import child_env
from .engines.base import new_run_id
from .engines.local_postgres import LocalPostgres
from .errors import HarnessError

MONGO_DB = "legrimoire"
PG_DB = "le_grimoire"
PG_USER = "grimoire"
HOST = "legrimoire-prod"
MONGO_SERVER_VERSION = "7.0.24"      # mongo:7.0
MONGO_TOOLS_VERSION = "100.12.2"     # the database tools shipped in that image (these write prelude.json)
ARCHIVE_OWNER = (1000, "legrimoire")  # the account backup-production.sh runs as
MAX_PASSPHRASE_BYTES = 4096          # written to gpg's pipe in one go: must fit any pipe buffer

# init-db.sh's createIndex calls, in order: (collection, key, unique).
MONGO_INDEXES: tuple[tuple[str, tuple[tuple[str, int], ...], bool], ...] = (
    ("ingredients", (("off_id", 1),), True),
    ("ingredients", (("names.fr", 1),), False),
    ("ingredients", (("names.en", 1),), False),
    ("ingredients", (("custom", 1),), False),
    ("categories", (("off_id", 1),), True),
    ("categories", (("names.fr", 1),), False),
    ("categories", (("names.en", 1),), False),
    ("recipes", (("title", 1),), False),
    ("recipes", (("created_at", -1),), False),
    ("recipes", (("is_public", 1),), False),
    ("recipes", (("category", 1),), False),
    ("recipes", (("cuisine", 1),), False),
)


# --- defects ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """What a defect changes before anything is generated."""

    duplicate_off_id: bool = False
    tiny: bool = False
    age: timedelta = timedelta(0)
    search_path_trap: bool = False


@dataclass(frozen=True)
class _Defect:
    description: str
    plan: _Plan = field(default_factory=_Plan)
    tree: Callable[[Path], None] | None = None       # applied to backup_<id>/ before packing
    archive: Callable[[Path], None] | None = None    # applied to the .tar.gz after packing


def _dump_file(root: Path, db: str, name: str) -> Path:
    """A file of the mongodump tree, with or without mongodump --gzip's .gz."""
    plain = root / "mongodb" / db / name
    zipped = plain.with_name(plain.name + ".gz")
    return zipped if zipped.exists() else plain


def _read_maybe_gz(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def _write_maybe_gz(path: Path, payload: bytes) -> None:
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)


def _edit_indexes(root: Path, collection: str, edit: Callable[[list], list]) -> None:
    path = _dump_file(root, MONGO_DB, f"{collection}.metadata.json")
    meta = json.loads(_read_maybe_gz(path))
    meta["indexes"] = edit(meta["indexes"])
    _write_maybe_gz(path, json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode())


def _drop_created_at_index(root: Path) -> None:
    _edit_indexes(root, "recipes", lambda indexes: [ix for ix in indexes if ix["name"] != "created_at_-1"])


def _add_unexpected_index(root: Path) -> None:
    extra = {"v": {"$numberInt": "2"}, "key": {"source_url": {"$numberInt": "1"}}, "name": "source_url_1",
             "background": True}
    _edit_indexes(root, "recipes", lambda indexes: indexes + [extra])


def _remove_categories(root: Path) -> None:
    for name in ("categories.bson", "categories.metadata.json"):
        _dump_file(root, MONGO_DB, name).unlink()


def _drop_last_export_element(root: Path) -> None:
    _drop_last_json_array_element(root / "ingredients_export.json")


def _truncate_recipes_bson(root: Path) -> None:
    path = _dump_file(root, MONGO_DB, "recipes.bson")
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(max(size - max(size // 10, 100), 1))


def _break_ingredients_metadata(root: Path) -> None:
    path = _dump_file(root, MONGO_DB, "ingredients.metadata.json")
    text = _read_maybe_gz(path)
    _write_maybe_gz(path, text[: len(text) // 2])


def _empty_mongodb(root: Path) -> None:
    """backup-production.sh with the MongoDB container down: empty mongodb/, no JSON exports."""
    for child in (root / "mongodb").iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for name in ("recipes_export.json", "ingredients_export.json"):
        (root / name).unlink()


def _remove_one_upload(root: Path) -> None:
    first = sorted((root / "uploads" / "recipes").iterdir())[0]
    first.unlink()


def _remove_backup_info(root: Path) -> None:
    (root / "backup_info.txt").unlink()


def _shift_backup_info(root: Path) -> None:
    """backup_info.txt of another night's backup (internally consistent, wrong for this folder)."""
    path = root / "backup_info.txt"
    backup_id = root.name.removeprefix("backup_")
    other = datetime.strptime(backup_id, "%Y%m%d_%H%M%S") - timedelta(days=1)
    lines = []
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("Backup ID: "):
            line = f"Backup ID: {other:%Y%m%d_%H%M%S}\n"
        elif line.startswith("Backup Date: "):
            shown = datetime.strptime(line.split(": ", 1)[1].strip(), "%Y-%m-%d %H:%M:%S %Z")
            line = f"Backup Date: {shown - timedelta(days=1):%Y-%m-%d %H:%M:%S} UTC\n"
        lines.append(line)
    path.write_text("".join(lines))


def _truncate_pg_dump(root: Path) -> None:
    path = root / "postgresql" / "database.backup"
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size * 6 // 10)


def _corrupt_pg_dump(root: Path) -> None:
    """Garble the table data near the end; the header and TOC at the front still read fine."""
    _overwrite_at(root / "postgresql" / "database.backup", 0.8, 512)


def _remove_pg_dumps(root: Path) -> None:
    """The PostgreSQL container was down: backup-production.sh leaves postgresql/ empty."""
    for name in ("database.backup", "database.sql"):
        (root / "postgresql" / name).unlink()


def _truncate_archive(archive: Path) -> None:
    with archive.open("r+b") as handle:
        handle.truncate(archive.stat().st_size * 85 // 100)


def _corrupt_archive(archive: Path) -> None:
    """Garble the deflate stream early, where the dumps are (the photos later are nearly stored)."""
    _overwrite_at(archive, 0.05, 4096)


def _overwrite_at(path: Path, where: float, length: int) -> None:
    """Flip the bits of ``length`` bytes at fraction ``where`` of a file (what a bad disk sector does)."""
    size = path.stat().st_size
    start = max(int(size * where) - length // 2, 0)
    with path.open("r+b") as handle:
        handle.seek(start)
        original = handle.read(length)
        handle.seek(start)
        handle.write(bytes((byte ^ 0xA5) for byte in original))


_DEFECTS: dict[str, _Defect] = {
    "duplicate-off-id": _Defect("two ingredients share an off_id although the unique off_id_1 index is in the metadata",
                                plan=_Plan(duplicate_off_id=True)),
    "missing-index": _Defect("recipes' created_at_-1 index is absent from recipes.metadata.json",
                             tree=_drop_created_at_index),
    "extra-index": _Defect("recipes.metadata.json has an index (source_url_1) init-db.sh never creates",
                           tree=_add_unexpected_index),
    "missing-collection": _Defect("legrimoire/categories.bson and its metadata are absent", tree=_remove_categories),
    "export-count-mismatch": _Defect("ingredients_export.json has one element fewer than ingredients.bson",
                                     tree=_drop_last_export_element),
    "truncated-bson": _Defect("recipes.bson is cut off in the middle of a document", tree=_truncate_recipes_bson),
    "malformed-metadata": _Defect("ingredients.metadata.json is not valid JSON (cut in half)",
                                  tree=_break_ingredients_metadata),
    "empty-mongodb": _Defect("mongodb/ is empty and the JSON exports are missing (MongoDB container was down)",
                             tree=_empty_mongodb),
    "missing-upload": _Defect("a recipe's image_url points to a file missing from uploads/recipes/",
                              tree=_remove_one_upload),
    "stale": _Defect("name and backup_info are 3 days old while the file's mtime is now",
                     plan=_Plan(age=timedelta(days=3))),
    "too-small": _Defect("a structurally valid backup under 100 KB (almost no data, no uploads)",
                         plan=_Plan(tiny=True)),
    "no-backup-info": _Defect("backup_info.txt is missing", tree=_remove_backup_info),
    "backup-info-mismatch": _Defect("backup_info.txt's Backup ID and Date are another night's",
                                    tree=_shift_backup_info),
    "truncated-pg-dump": _Defect("postgresql/database.backup is cut off at 60 %", tree=_truncate_pg_dump),
    "corrupt-pg-dump": _Defect("postgresql/database.backup has garbled bytes in its data", tree=_corrupt_pg_dump),
    "missing-pg-dump": _Defect("postgresql/ is empty (PostgreSQL container was down)", tree=_remove_pg_dumps),
    "sql-errors": _Defect("the PostgreSQL dump fails to restore: an index calls a function that needs search_path",
                          plan=_Plan(search_path_trap=True)),
    "truncated-archive": _Defect("the .tar.gz is cut off (85 % of its bytes)", archive=_truncate_archive),
    "corrupt-archive": _Defect("the .tar.gz has garbled bytes in the middle", archive=_corrupt_archive),
}

DEFECTS: dict[str, str] = {name: defect.description for name, defect in _DEFECTS.items()}


def _defect(name: str | None) -> _Defect | None:
    if name is None:
        return None
    if name not in _DEFECTS:
        raise ValueError(f"unknown defect {name!r}; known: {', '.join(sorted(_DEFECTS))}")
    return _DEFECTS[name]


# --- public API -------------------------------------------------------------------------------------

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
        chosen = _defect(defect)
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if chosen is not None and chosen.archive is not None and not as_archive:
            raise ValueError(f"defect {defect!r} damages the .tar.gz, so it needs as_archive=True")
        _check_passphrase(passphrase, as_archive)
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
    _defect(defect)  # fail on a bad name before starting PostgreSQL
    _check_passphrase(passphrase, as_archive)
    with SampleWriter(temp_root=temp_root, progress=progress) as writer:
        return writer.write(out_dir, when=when, defect=defect, scale=scale, gzip_dump=gzip_dump, seed=seed,
                            as_archive=as_archive, passphrase=passphrase)


def write_generations(out_dir: Path, *, count: int, newest: datetime | None = None, defect: str | None = None,
                      temp_root: Path | None = None, progress: Callable[[str], None] | None = None,
                      **write_options) -> list[Path]:
    """A nightly series (02:00 UTC, one a day), newest first; ``defect`` applies to the newest only.

    ``newest`` defaults to the last 02:00 UTC that is past; ``write_options`` are SampleWriter.write's
    (``passphrase=`` encrypts every generation).
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    chosen = _defect(defect)
    _check_passphrase(write_options.get("passphrase"), write_options.get("as_archive", True))
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
                for night in range(count)]


def _started_at(when: datetime | None) -> datetime:
    if when is None:
        return (datetime.now(timezone.utc) - timedelta(hours=1)).replace(microsecond=0)
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware (UTC), e.g. datetime(..., tzinfo=timezone.utc)")
    return when.astimezone(timezone.utc).replace(microsecond=0)


# --- one backup ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    """Everything one backup is made from."""

    seed: int
    started: datetime          # when backup-production.sh ran: the name, the Backup ID
    counts: data.SampleCounts
    plan: _Plan
    gzip_dump: bool
    scale: int

    @property
    def backup_id(self) -> str:
        return f"{self.started:%Y%m%d_%H%M%S}"

    @property
    def finished(self) -> datetime:
        """backup_info.txt's date is taken after the dumps, a few seconds after the Backup ID."""
        return self.started + timedelta(seconds=4 + math.ceil(2 * math.sqrt(self.scale)))


def _write_one(out_dir: Path, pg: LocalPostgres, *, started: datetime, defect: _Defect | None, scale: int,
               gzip_dump: bool, seed: int, as_archive: bool, passphrase: str | None, temp_root: Path | None,
               progress: Callable[[str], None] | None) -> Path:
    """Build in a temp dir next to the output (or in temp_root), move into place only when complete."""
    plan = defect.plan if defect is not None else _Plan()
    job = _Job(seed=seed, started=started - plan.age, counts=data.SampleCounts.for_scale(scale, tiny=plan.tiny),
               plan=plan, gzip_dump=gzip_dump, scale=scale)
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
        _write_mongodump(root, job)
        say(f"backup_{job.backup_id}: PostgreSQL dumps")
        _write_postgres(root / "postgresql", job, pg)
        say(f"backup_{job.backup_id}: uploads")
        _write_uploads(root / "uploads", job)
        _write_backup_info(root, job)
        _stamp_times(root, job.finished)
        if defect is not None and defect.tree is not None:
            defect.tree(root)
        if as_archive:
            built = work / target.name
            say(f"backup_{job.backup_id}: packing")
            _pack(root, built, job.finished)
            if defect is not None and defect.archive is not None:
                defect.archive(built)
            if passphrase is not None:
                say(f"backup_{job.backup_id}: encrypting")
                built = _encrypt(built, passphrase)
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


def _write_backup_info(root: Path, job: _Job) -> None:
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


def _check_passphrase(passphrase: str | None, as_archive: bool) -> None:
    if passphrase is None:
        return
    if not passphrase:
        raise ValueError("an empty passphrase encrypts nothing; give a real one")
    if "\n" in passphrase or "\r" in passphrase or len(passphrase.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise ValueError(f"a passphrase is one line of at most {MAX_PASSPHRASE_BYTES} bytes (gpg reads one line)")
    if not as_archive:
        raise ValueError("only an archive can be encrypted: passphrase needs as_archive=True")


def _encrypt(archive: Path, passphrase: str) -> Path:
    """``gpg --symmetric --cipher-algo AES256`` next to ``archive``; return the ``.gpg`` file.

    The passphrase goes through a pipe (``--passphrase-fd``), never argv or the environment.
    gpg 2.2 needs an agent even for symmetric encryption, so one starts in a throwaway home
    (short path: its socket lives there) and is stopped before the home is removed.
    """
    gpg = shutil.which("gpg")
    if gpg is None:
        raise HarnessError("gpg is not installed, so the sample cannot be encrypted",
                           fix="install GnuPG (apt-get install gnupg) or drop --encrypt")
    target = archive.with_name(archive.name + ".gpg")
    home = Path(tempfile.mkdtemp(prefix="gd-gnupg-"))
    read_fd, write_fd = os.pipe()
    try:
        with os.fdopen(write_fd, "wb") as secret:  # a passphrase fits the pipe buffer: no deadlock
            secret.write(passphrase.encode("utf-8") + b"\n")
        done = subprocess.run(
            [gpg, "--batch", "--quiet", "--no-tty", "--homedir", str(home), "--pinentry-mode", "loopback",
             "--passphrase-fd", str(read_fd), "--symmetric", "--cipher-algo", "AES256",
             "--output", str(target), str(archive)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, pass_fds=(read_fd,),
            env=child_env())
    finally:
        os.close(read_fd)
        subprocess.run([shutil.which("gpgconf") or "gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                       capture_output=True, check=False, env=child_env())
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        reason = done.stderr.replace(passphrase, "***").strip().splitlines()
        raise HarnessError(f"gpg could not encrypt the sample: {reason[-1] if reason else done.returncode}",
                           where=str(archive), fix="check the GnuPG installation")
    archive.unlink()
    return target


def _stamp_times(root: Path, moment: datetime) -> None:
    """Dump files and folders carry the backup's time; uploaded files keep their own (docker cp keeps them)."""
    stamp = moment.timestamp()
    uploads = root / "uploads"
    for path in [root, *root.rglob("*")]:
        if path.is_dir() or uploads not in path.parents:
            os.utime(path, (stamp, stamp))


def _pack(root: Path, archive: Path, mtime: datetime) -> None:
    """``tar -czf backup_<id>.tar.gz backup_<id>``: one top folder, owned by the backup account.

    GNU tar format and gzip level 6 as ``tar -z`` gives; the gzip member carries the backup's time."""
    uid, user = ARCHIVE_OWNER

    with open(archive, "wb") as raw, _BlockGzipWriter(raw, mtime=int(mtime.timestamp())) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = uid
            info.uname = info.gname = user
            tar.members.clear()  # a writer never reads them back: memory stays flat at any file count
            return info

        tar.copybufsize = _GZIP_BLOCK
        tar.add(root, arcname=root.name, recursive=True, filter=owned)


_GZIP_BLOCK = 1 << 20       # bytes of tar stream per deflate block
_DEFLATE_WINDOW = 1 << 15   # deflate looks back this far: each block is primed with its predecessor's tail
_GZIP_MAX_WORKERS = 8       # past this the disk, not deflate, is the limit; keeps blocks in flight few


class _BlockGzipWriter:
    """``gzip -6`` output made the way pigz makes it, so every core compresses.

    The stream is cut into 1 MiB blocks; each is deflated on a worker thread (zlib releases the GIL),
    primed with the previous block's last 32 KiB and ended with a sync flush, so the blocks join into
    one ordinary deflate stream any gunzip reads. Only a few blocks are in flight: memory stays flat.
    """

    def __init__(self, raw: IO[bytes], *, mtime: int, level: int = 6):
        self._raw = raw
        self._level = level
        cores = os.cpu_count()
        self._workers = min(cores if cores is not None else 1, _GZIP_MAX_WORKERS)
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="gzip-block")
        self._pending: deque[Future[bytes]] = deque()
        self._buffer = bytearray()
        self._previous_tail = b""
        self._crc = 0
        self._size = 0
        # gzip header: deflate, no name, the archive's mtime, XFL 0 (level 6), OS 3 (Unix).
        raw.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + b"\x00\x03")

    def __enter__(self) -> "_BlockGzipWriter":
        return self

    def tell(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._size += len(data)
        while len(self._buffer) >= _GZIP_BLOCK:
            self._submit(bytes(self._buffer[:_GZIP_BLOCK]))
            del self._buffer[:_GZIP_BLOCK]
        return len(data)

    def _submit(self, block: bytes) -> None:
        self._crc = zlib.crc32(block, self._crc)
        self._pending.append(self._pool.submit(_deflate_block, block, self._previous_tail, self._level))
        self._previous_tail = block[-_DEFLATE_WINDOW:]
        while len(self._pending) > 2 * self._workers:
            self._raw.write(self._pending.popleft().result())

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                if self._buffer:
                    self._submit(bytes(self._buffer))
                    self._buffer.clear()
                while self._pending:
                    self._raw.write(self._pending.popleft().result())
                self._raw.write(zlib.compressobj(self._level, zlib.DEFLATED, -15).flush())  # the final block
                self._raw.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        finally:
            for pending in self._pending:
                pending.cancel()
            self._pool.shutdown(wait=True)


def _deflate_block(block: bytes, primer: bytes, level: int) -> bytes:
    """One block of the raw deflate stream: not final, byte-aligned by the sync flush."""
    if primer:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, zdict=primer)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)


# --- MongoDB: mongodump --out ---------------------------------------------------------------------------

@contextmanager
def _dump_output(path: Path, zipped: bool) -> Iterator[IO[bytes]]:
    """A dump file as mongodump writes it: plain, or gzip without name and mtime (Go's gzip writer)."""
    with ExitStack() as stack:
        raw = stack.enter_context(open(path if not zipped else path.with_name(path.name + ".gz"), "wb"))
        if zipped:
            yield stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0))
        else:
            yield raw


def _write_mongodump(root: Path, job: _Job) -> None:
    mongo = root / "mongodb"
    app = mongo / MONGO_DB
    admin = mongo / "admin"
    app.mkdir()
    admin.mkdir()
    seed, counts, when = job.seed, job.counts, job.started
    exports = {"recipes": root / "recipes_export.json", "ingredients": root / "ingredients_export.json"}

    def ingredients() -> Iterator[dict]:
        for index in range(counts.ingredients):
            yield data.ingredient_doc(seed, index, counts, when, duplicate_off_id=job.plan.duplicate_off_id)

    def recipes() -> Iterator[dict]:
        for index in range(counts.recipes):
            yield data.recipe_doc(seed, data.recipe_facts(seed, index, counts, when))

    def categories() -> Iterator[dict]:
        for index in range(counts.categories):
            yield data.category_doc(seed, index, counts, when)

    _write_collection(app, "ingredients", ingredients(), job, export=(exports["ingredients"], data.ingredient_export))
    _write_collection(app, "recipes", recipes(), job, export=(exports["recipes"], data.recipe_export))
    _write_collection(app, "categories", categories(), job)
    _write_collection(admin, "system.version", iter(data.system_version_docs()), job)
    with _dump_output(mongo / "prelude.json", job.gzip_dump) as out:
        out.write(json.dumps({"ServerVersion": MONGO_SERVER_VERSION, "ToolVersion": MONGO_TOOLS_VERSION},
                             separators=(",", ":")).encode())


def _write_collection(db_dir: Path, name: str, docs: Iterable[dict], job: _Job,
                      export: tuple[Path, Callable[[dict], dict]] | None = None) -> int:
    """``<name>.bson`` (documents back to back), ``<name>.metadata.json``, and optionally the JSON export."""
    written = 0
    with ExitStack() as stack:
        out = stack.enter_context(_dump_output(db_dir / f"{name}.bson", job.gzip_dump))
        exporter = stack.enter_context(_JsonArrayWriter(export[0])) if export is not None else None
        for doc in docs:
            out.write(bson.encode(doc))
            if exporter is not None:
                exporter.add(export[1](doc))
            written += 1
    with _dump_output(db_dir / f"{name}.metadata.json", job.gzip_dump) as out:
        out.write(collection_metadata(db_dir.name, name, job.seed).encode())
    return written


def collection_metadata(db: str, collection: str, seed: int) -> str:
    """``<coll>.metadata.json`` as mongodump 100.x writes it: canonical Extended JSON, compact."""
    indexes = [SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])]
    if db == MONGO_DB:
        for coll, key, unique in MONGO_INDEXES:
            if coll != collection:
                continue
            spec = SON([("v", 2), ("key", SON(list(key))), ("name", "_".join(f"{f}_{d}" for f, d in key))])
            if unique:
                spec["unique"] = True
            spec["background"] = True
            indexes.append(spec)
    meta = SON([("indexes", indexes), ("uuid", data.det_uuid(seed, f"collection:{db}.{collection}", 0).hex),
                ("collectionName", collection), ("type", "collection")])
    return json_util.dumps(meta, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":"),
                           ensure_ascii=False)


class _JsonArrayWriter:
    """``json.dump(items, f, indent=2, ensure_ascii=False, default=str)``, one item at a time."""

    def __init__(self, path: Path):
        self._path = path
        self._handle: IO[str] | None = None
        self._count = 0

    def __enter__(self) -> "_JsonArrayWriter":
        self._handle = open(self._path, "w", encoding="utf-8")
        return self

    def add(self, item: dict) -> None:
        assert self._handle is not None
        parts = ["[\n  " if self._count == 0 else ",\n  "]
        _indented_json(item, "  ", parts)
        self._handle.write("".join(parts))
        self._count += 1

    def __exit__(self, *exc) -> None:
        assert self._handle is not None
        self._handle.write("\n]" if self._count else "[]")
        self._handle.close()


def _indented_json(value: object, pad: str, parts: list[str]) -> None:
    """``json.dumps(value, indent=2, ensure_ascii=False, default=str)`` at depth ``pad``, appended to ``parts``.

    The same text as json's pure-Python indenting encoder (the C one cannot indent), in about half the time:
    exports run to hundreds of megabytes. Anything not JSON-native (datetimes) is written as its str().
    """
    kind = type(value)
    if kind is str:
        parts.append(encode_basestring(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif kind is float:
        parts.append(json.dumps(value))
    elif kind is dict or kind is list:
        if not value:
            parts.append("{}" if kind is dict else "[]")
            return
        inner = pad + "  "
        opening, separator = ("{\n" if kind is dict else "[\n") + inner, ",\n" + inner
        if kind is dict:
            for number, (key, item) in enumerate(value.items()):
                parts.append((separator if number else opening) + encode_basestring(str(key)) + ": ")
                _indented_json(item, inner, parts)
        else:
            for number, item in enumerate(value):
                parts.append(separator if number else opening)
                _indented_json(item, inner, parts)
        parts.append("\n" + pad + ("}" if kind is dict else "]"))
    else:
        parts.append(encode_basestring(str(value)))


def _drop_last_json_array_element(path: Path) -> None:
    """Remove the last element of a file _JsonArrayWriter wrote, reading only its tail."""
    separator = b"\n  },\n  {\n"
    size = path.stat().st_size
    with path.open("r+b") as handle:
        window = 1 << 16
        while True:
            start = max(size - window, 0)
            handle.seek(start)
            tail = handle.read()
            found = tail.rfind(separator)
            if found >= 0:
                handle.seek(start + found)
                handle.truncate()
                handle.write(b"\n  }\n]")
                return
            if start == 0:
                handle.seek(0)
                handle.truncate()
                handle.write(b"[]")
                return
            window *= 4


# --- PostgreSQL: pg_dump of a real database ----------------------------------------------------------------

def _write_postgres(out: Path, job: _Job, pg: LocalPostgres) -> None:
    pg.drop_database(PG_DB)
    pg.create_database(PG_DB)
    with psycopg.connect(pg.conninfo(PG_DB)) as conn:
        conn.execute(data.INIT_SQL)
        conn.execute(data.MIGRATED_SQL)
        # The rows are generated consistent, so per-row foreign-key triggers are pure cost here (a third
        # of the load); replica mode skips them for this session. pg_restore still checks every key.
        conn.execute("SET session_replication_role = replica")
        _load_rows(conn, job)
        conn.execute("RESET session_replication_role")
        if job.plan.search_path_trap:
            conn.execute(data.SEARCH_PATH_TRAP_SQL)
        conn.commit()
    with psycopg.connect(pg.conninfo(PG_DB), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    dumps = ((["-F", "c", "-b", "-f", "{out}", PG_DB], "database.backup"), (["-f", "{out}", PG_DB], "database.sql"))
    with ThreadPoolExecutor(max_workers=len(dumps), thread_name_prefix="pg_dump") as pool:  # independent readers
        running = [(pool.submit(pg.run_tool, "pg_dump", args, {"out": out / name}), name) for args, name in dumps]
        for future, name in running:
            done = future.result()
            if not done.ok:
                raise HarnessError(f"pg_dump failed: {done.stderr.strip()[-300:]}", where=str(out / name),
                                   fix="check the PostgreSQL client tools and free disk space")


def _copy(conn: psycopg.Connection, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _load_rows(conn: psycopg.Connection, job: _Job) -> None:
    seed, counts, when = job.seed, job.counts, job.started

    def recipe_facts() -> Iterator[data.RecipeFacts]:
        for index in range(counts.recipes):
            yield data.recipe_facts(seed, index, counts, when)

    _copy(conn, "users", data.USER_COLUMNS, (data.user_row(seed, i, when) for i in range(counts.users)))
    _copy(conn, "recipes", data.RECIPE_COLUMNS, (data.recipe_row(seed, facts) for facts in recipe_facts()))
    _copy(conn, "recipe_tags", data.TAG_COLUMNS,
          (row for facts in recipe_facts() for row in data.recipe_tag_rows(seed, facts)))
    _copy(conn, "grocery_stores", data.STORE_COLUMNS, data.store_rows(seed, when))
    _copy(conn, "grocery_specials", data.SPECIAL_COLUMNS,
          (data.special_row(seed, i, when) for i in range(counts.grocery_specials)))
    _copy(conn, "shopping_lists", data.LIST_COLUMNS,
          (data.shopping_list_row(seed, i, counts, when) for i in range(counts.shopping_lists)))
    _copy(conn, "shopping_list_items", data.ITEM_COLUMNS,
          (row for i in range(counts.shopping_lists) for row in data.shopping_item_rows(seed, i, counts, when)))
    _copy(conn, "favorites", data.FAVORITE_COLUMNS,
          (row for u in range(counts.users) for row in data.favorite_rows(seed, u, counts, when)))
    _copy(conn, "ocr_jobs", data.OCR_COLUMNS,
          (data.ocr_job_row(seed, i, counts, when) for i in range(counts.ocr_jobs)))


# --- uploads ---------------------------------------------------------------------------------------------

def _write_uploads(uploads: Path, job: _Job) -> None:
    """Every recipe photo its image_url names, plus uploads no recipe references."""
    seed, counts = job.seed, job.counts
    photos = data.PhotoPool(seed)
    recipes_dir = uploads / "recipes"
    for index in range(counts.recipes):
        ext = counts.recipe_image_ext(index)
        if ext is None:
            continue
        facts = data.recipe_facts(seed, index, counts, job.started)
        assert facts.image_url is not None
        path = uploads.parent / facts.image_url.removeprefix("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photos.photo("recipe", index, ext))
        os.utime(path, (facts.created_at.timestamp(), facts.created_at.timestamp()))
    recipes_dir.mkdir(exist_ok=True)
    for k, name in enumerate(data.other_upload_names(seed, counts)):
        path = uploads / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photos.photo("other", k, "jpg"))
        uploaded = job.started - timedelta(days=3 + 11 * k % 200, minutes=37 * k % 1440)
        os.utime(path, (uploaded.timestamp(), uploaded.timestamp()))
