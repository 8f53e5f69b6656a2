"""The previous generation: the last full drill of an older backup in history.jsonl, else the older archive.

Why in this order: a drill's own record holds what it counted in a restored copy (documents, rows,
the newest timestamps), which no archive header can give. Only when no older backup was ever
drilled is the previous archive in the backups folder read, and then without a restore: its tar
headers (sizes of each ``.bson``, of the pg dump, the uploads' file count), its mongodump metadata
(index names) and the ``.bson`` members the freshness fields live in, streamed through the
archive package's bounded readers into a scratch folder of the run's temp dir, removed afterwards.

Nothing the previous backup holds may flip this drill's verdict by itself being broken: a previous
generation that cannot be read is reported as such (the drift checks skip, saying why), never raised.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import archive
from ..archive.locate import parse_backup_name
from ..config import DrillConfig
from ..dump import iter_bson_batches, read_metadata
from ..errors import GrimoireDrillError
from ..expectations import Expectations
from ..generations import ARCHIVE, Generation, bson_namespace, field_id, from_history, sanitized, time_text
from ..report.history import read_history
from ..report.scope import is_whole_drill_verdict
from ..engines.base import run_env
from .backup import BackupStages
from .stages import StageRunner

METADATA_SUFFIXES = (".metadata.json", ".metadata.json.gz")


@dataclass(frozen=True)
class PreviousGeneration:
    """The generation before this one, or why there is none (``generation`` None)."""

    generation: Generation | None
    reason: str   # where it came from, or why there is none: what a skip says
    unreadable: bool = False  # there is one, but it could not be read (nothing proven, not "first ever")

    def as_dict(self) -> dict:
        if self.generation is None:
            return {"found": False, "reason": self.reason, "unreadable": self.unreadable}
        found = self.generation
        return {"found": True, "reason": self.reason, "backup_id": found.backup_id, "name": found.name,
                "source": found.source, **found.as_record()}


class PreviousFinder:
    """Finds and reads the previous generation once (stage ``previous_generation``)."""

    def __init__(self, config: DrillConfig, expectations: Expectations, run_id: str, stages: StageRunner,
                 backup: BackupStages):
        self.config = config
        self.expectations = expectations
        self.run_id = run_id
        self.stages = stages
        self.backup = backup
        self.history_path: Path | None = None   # set by the caller once it knows where history.jsonl is

    def previous(self) -> PreviousGeneration:
        return self.stages.run("previous_generation", self._find)

    def _find(self) -> PreviousGeneration:
        current = self.backup.located()
        record = self._from_history(current.backup_id)
        if record is not None:
            return PreviousGeneration(from_history(record), f"the last full drill of {record.get('archive')} "
                                      f"in {self.history_path}")
        if current.remote is not None:
            return PreviousGeneration(None, "no previous generation to compare with (no older backup drilled in "
                                      "history.jsonl; an off-site source's older archives are not transferred again)")
        older = self._older_archive(current)
        if older is None:
            return PreviousGeneration(None, "no previous generation to compare with (no older backup drilled "
                                      "in history.jsonl, none beside this one in the backups folder)")
        try:
            return PreviousGeneration(self._read_archive(older), f"{older.name} in the backups folder "
                                      "(never drilled: its tar headers and metadata, no restore)")
        except GrimoireDrillError as error:
            return PreviousGeneration(None, f"the previous generation {older.name} could not be read: {error.line()}",
                                      unreadable=True)
        finally:
            shutil.rmtree(self.backup.temp_dir / "previous", ignore_errors=True)

    # -- history.jsonl -----------------------------------------------------------------------------
    def _from_history(self, backup_id: str) -> dict | None:
        """The last full drill of the newest backup older than ``backup_id`` (ids sort as times)."""
        if self.history_path is None:
            return None
        try:
            records = read_history(self.history_path, limit=self.expectations.limits.history_records_read)
        except GrimoireDrillError:
            return None
        best: dict | None = None
        for record in records:
            other = record.get("backup_id")
            if not isinstance(other, str) or parse_backup_name(f"backup_{other}") is None or other >= backup_id:
                continue
            if is_whole_drill_verdict(record) and (best is None or other >= best["backup_id"]):
                best = record  # records are oldest first: a later drill of the same backup wins
        return best

    # -- the older archive ---------------------------------------------------------------------------
    def _older_archive(self, current: archive.BackupRef) -> archive.BackupRef | None:
        """The newest readable backup in the folder older than ``current`` (by the time in its name).

        Never for an off-site source (``s3://``, ``sftp://``, see ``_find``): reading the previous
        generation would be a second full transfer, so drift then comes from the history file alone.
        """
        given = Path(self.config.backups) if self.config.backups is not None else current.path.parent
        folder = given if given.is_dir() and given != current.path else current.path.parent
        try:
            refs = archive.find_backups(folder, self.config.backup_timezone)
        except OSError:
            return None
        return next((ref for ref in refs if ref.backup_id < current.backup_id), None)

    def _read_archive(self, ref: archive.BackupRef) -> Generation:
        expectations = self.expectations
        limits = expectations.limits
        skip = set(expectations.skip_databases)
        fields = [(c, f) for kind, c, f in expectations.generations.freshness_fields() if kind == "mongodb"]
        wanted_bson = {f"mongodb/{expectations.mongo_database}/{c}{suffix}" for c, _ in fields
                       for suffix in (".bson", ".bson.gz")}

        def dumped(path: str) -> bool:
            return (path.startswith("postgresql/") or
                    (path.startswith("mongodb/") and path.split("/")[1] not in skip and path.count("/") == 2))

        def copied(path: str, size: int) -> bool:
            if path in wanted_bson:
                return True
            return (dumped(path) and path.endswith(METADATA_SUFFIXES) and size <= limits.max_text_file_bytes)

        seen = archive.survey(ref, self.backup.temp_dir / "previous", size=dumped, copy=copied,
                              count_under=("uploads/",), limits=limits, passphrase=self.config.read_passphrase(),
                              run_tags=run_env(self.run_id))
        indexes: dict[str, tuple[str, ...]] = {}
        for path, copy in seen.copies.items():
            if path.endswith(METADATA_SUFFIXES):
                _top, db, name = path.split("/")
                stem = name.removesuffix(".gz").removesuffix(".metadata.json")
                indexes[f"{db}.{stem}"] = _index_names(read_metadata(copy, limits))
        newest: dict[str, str | None] = {}
        for collection, name in fields:
            for path, copy in seen.copies.items():
                if path in wanted_bson and bson_namespace(path) == f"{expectations.mongo_database}.{collection}":
                    found = _newest_in_bson(copy, name, limits)
                    newest[field_id("mongodb", collection, name)] = None if found is None else time_text(found)
        return sanitized(Generation(backup_id=ref.backup_id, name=ref.name, source=ARCHIVE,
                          uploads=seen.counted.get("uploads/"), archive_bytes=ref.size_bytes,
                          dump_bytes={path: size for path, size in seen.sizes.items()
                                      if bson_namespace(path) or path.startswith("postgresql/")},
                          indexes=indexes, newest=newest, truncated=seen.truncated), limits.max_evidence_chars)


def _index_names(metadata: dict) -> tuple[str, ...]:
    """The names of a metadata file's indexes; entries that are not index specs are left out."""
    specs = metadata.get("indexes")
    if not isinstance(specs, list):
        return ()
    return tuple(sorted(str(spec["name"]) for spec in specs if isinstance(spec, dict) and isinstance(spec.get("name"), str)))


def _newest_in_bson(path: Path, name: str, limits) -> datetime | None:
    """The newest datetime value of field ``name`` (dotted) in a .bson file; other types are left out."""
    newest: datetime | None = None
    for batch in iter_bson_batches(path, limits=limits):
        for document in batch.documents:
            value = document
            for step in name.split("."):
                value = value.get(step) if isinstance(value, dict) else None
            if isinstance(value, datetime) and (newest is None or value > newest):
                newest = value
    return newest
