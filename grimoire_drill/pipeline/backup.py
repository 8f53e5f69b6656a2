"""The backup's stages: locate, extract into the run's temp dir, and what is read from the tree.

Why apart from the engines: reading the backup needs no server, and a run of the archive
checks alone (``-k archive``) uses only these stages. The temp dir is owned here because the
extracted tree is its biggest tenant; the engines start below it too (``temp_dir``).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

from .. import archive
from ..config import DrillConfig
from ..dump import CollectionDump, scan_mongodump
from ..engines.base import OWNER_FILE, owner_tag, run_env
from ..errors import DrillFailure, GrimoireDrillError, HarnessError
from ..expectations import Expectations
from ..export_counts import ExportCounts
from ..restore.postgres import pick_dump
from .stages import StageRunner

Say = Callable[..., None]  # (line, transient=False)


class BackupStages:
    """Locate, extract, backup_info, the mongodump layout, the JSON exports' counts, the pg dump."""

    def __init__(self, config: DrillConfig, expectations: Expectations, run_id: str, stages: StageRunner,
                 say: Say):
        self.config = config
        self.expectations = expectations
        self.run_id = run_id
        self.stages = stages
        self.say = say
        self.closed = False                       # set by the session's close(): no new extraction
        self.extract_done = threading.Event()     # set once the extract stage has an outcome (or on close)
        self._temp: Path | None = None
        self._temp_lock = threading.Lock()
        self._export_counts: ExportCounts | None = None

    # -- the run's temp dir ------------------------------------------------------------------
    @property
    def temp_dir(self) -> Path:
        with self._temp_lock:  # engines start in their threads while the main thread extracts
            if self._temp is None:
                self._temp = self._make_temp_dir()
            return self._temp

    def _make_temp_dir(self) -> Path:
        parent = self.config.temp_dir if self.config.temp_dir is not None else Path(tempfile.gettempdir())
        try:
            temp = Path(tempfile.mkdtemp(prefix=f"gd-{self.run_id}-", dir=parent))
            temp.chmod(0o711)  # the local PostgreSQL runs as another OS user below it
            (temp / OWNER_FILE).write_text(owner_tag() + "\n")  # killed? the next run's janitor sees it
        except OSError as exc:
            raise HarnessError(f"cannot create the run's temp dir: {exc.strerror}", where=str(parent),
                               fix="pass --temp-dir pointing at a writable folder with free space") from None
        return temp

    def display(self, text: str) -> str:
        """Paths inside the run's temp copy shown from ``backup_<id>/`` on (the temp dir is gone afterwards)."""
        if self._temp is None:
            return text
        return text.replace(str(self._temp / "backup") + "/", "")

    def start_removing_extraction(self) -> threading.Thread | None:
        """Remove the extracted tree in the background (gigabytes: unlinks wait on the disk, not the GIL)."""
        if self._export_counts is not None:
            self._export_counts.close()
        if self._temp is None or not (self._temp / "backup").is_dir():
            return None
        remover = threading.Thread(target=shutil.rmtree, args=(self._temp / "backup",),
                                   kwargs={"ignore_errors": True}, name="remove-extraction")
        remover.start()
        return remover

    def remove_temp_dir(self) -> None:
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def stop_export_counts(self) -> None:
        """Interrupted: end the child process counting the JSON exports."""
        if self._export_counts is not None:
            self._export_counts.close()

    # -- stages --------------------------------------------------------------------------------
    def located(self) -> archive.BackupRef:
        def locate() -> archive.BackupRef:
            if self.config.backups is None:
                raise HarnessError("no BACKUPS given", fix="grimoire-drill run /path/to/backups (or --drill-backups)")
            ref = archive.locate(self.config.backups, self.config.backup_timezone, self.expectations.limits)
            self.say(f"backup: {ref.name} ({ref.size_bytes:,} bytes) from {ref.where}")
            return ref
        return self.stages.run("locate", locate, "locate")

    def series(self) -> tuple[str, ...] | None:
        """The backup ids named in the BACKUPS folder (names only), or None when BACKUPS is one backup."""
        def list_names() -> tuple[str, ...] | None:
            if self.config.backups is None:
                raise HarnessError("no BACKUPS given", fix="grimoire-drill run /path/to/backups (or --drill-backups)")
            limits = self.expectations.limits
            return archive.series_ids(self.config.backups, limits.max_series_backups,
                                      limits.name("max_series_backups"), self.config.backup_timezone, limits)
        return self.stages.run("series", list_names)

    def extracted(self) -> archive.Extracted:
        def extract() -> archive.Extracted:
            if self.closed:
                raise HarnessError("the archive was not read: the drill is stopping", fix="nothing to do: it was interrupted")
            ref = self.located()
            self.say(f"archive: verifying and extracting {ref.path.name}")
            return archive.extract(ref, self.temp_dir / "backup", passphrase=self.config.read_passphrase(),
                                   limits=self.expectations.limits,
                                   progress=self._byte_progress, run_tags=run_env(self.run_id))
        try:
            return self.stages.run("extract", extract, "archive")
        finally:
            self.extract_done.set()

    def _byte_progress(self, done: int, total: int) -> None:
        self.say(f"archive: {done / 1e6:,.1f} / {total / 1e6:,.1f} MB read", transient=True)

    def backup_info(self) -> dict[str, str]:
        return self.stages.run("backup_info", lambda: archive.read_backup_info(self.extracted().root,
                                                                                self.expectations.limits))

    def mongo_layout(self) -> dict[str, dict[str, CollectionDump]]:
        def scan() -> dict[str, dict[str, CollectionDump]]:
            root = self.extracted().root / "mongodb"
            if not root.is_dir():
                raise DrillFailure("no mongodb/ folder in the backup", where=self.located().where,
                                   fix="check the backup job's mongodump step")
            return scan_mongodump(root, self.expectations.limits)
        return self.stages.run("mongo_layout", scan)

    def export_counts(self) -> ExportCounts:
        """The JSON exports' object counts, started once (in the background when they are big)."""
        with self.stages.lock:
            if self._export_counts is None:
                root = self.extracted().root
                self._export_counts = ExportCounts([root / name for name, _ in self.expectations.exports],
                                                   self.run_id, limits=self.expectations.limits,
                                                   dumps=self._export_dumps(root)).start()
            return self._export_counts

    def _export_dumps(self, root: Path) -> dict[Path, tuple[Path, str]]:
        """Each export's collection dump, so the export's one parse also compares it (content checks)."""
        try:
            collections = self.mongo_layout().get(self.expectations.mongo_database, {})
        except GrimoireDrillError:
            return {}  # no usable dump: the mongodb checks say why
        return {root / name: (dump.bson_path, collection) for name, collection in self.expectations.exports
                if (dump := collections.get(collection)) is not None and dump.bson_path is not None}

    def postgres_dump(self) -> Path:
        return self.stages.run("postgres_dump", lambda: pick_dump(self.extracted().root / "postgresql"))
