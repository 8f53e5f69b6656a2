"""The drill's pipeline, one object: config → archive → engines → restore → counts, each stage once.

A thin composition of the parts (``stages``: the once-runner and phases; ``backup``: the
archive's stages and the temp dir; ``prepare``: engines and restores; ``counts``; ``facts``:
what the report gets), so the plugin and the pre-migration rounds hold one handle. Checks get
less: ``CheckView`` (``pipeline/check_view.py``), the stages they read and nothing else.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import psycopg

from .. import archive
from ..config import DrillConfig
from ..deadline import RunDeadline
from ..dump import CollectionDump
from ..engines.selection import Choice
from ..errors import GrimoireDrillError
from ..expectations import Expectations
from ..export_content import ExportComparison
from ..export_counts import ExportCounts
from ..generations import Generation, Newest
from ..restore.mongo import MongoRestore
from ..restore.postgres import PostgresRestore
from ..run_facts import Phase, RunFacts
from .backup import BackupStages
from .content import Content, ContentComparison
from .counts import Counts
from .facts import collect_facts
from .generation import GenerationMeasure
from .previous import PreviousFinder, PreviousGeneration
from .prepare import DatabaseState, EnginePreparer
from .stages import StageRunner

Progress = Callable[..., None]  # (line, transient=False): transient lines may be overwritten or thinned


class DrillSession:
    """One drill's stages, its engines, its deadline and its temp dir; ``close`` ends them all."""

    def __init__(self, config: DrillConfig, expectations: Expectations, run_id: str,
                 progress: Progress | None = None, engines: tuple[Choice, Choice] | None = None):
        """``engines``: the (MongoDB, PostgreSQL) choices the preflight made, so they are not probed again."""
        self.config = config
        self.expectations = expectations
        self.run_id = run_id
        self.progress = progress
        self.started_at = datetime.now(timezone.utc)
        self.now = config.now if config.now is not None else self.started_at
        self.stages = StageRunner()               # its clock starts now, with started_at
        self.backup = BackupStages(config, expectations, run_id, self.stages, self.say)
        self.engines = EnginePreparer(config, expectations, run_id, self.stages, self.backup, self.say, choices=engines)
        self.counts = Counts(expectations, self.stages, self.backup, self.engines)
        self.generation = GenerationMeasure(expectations, self.stages, self.backup, self.engines, self.counts)
        self.previous = PreviousFinder(config, expectations, run_id, self.stages, self.backup)
        self.content = Content(expectations, self.stages, self.backup, self.engines, self.counts)
        self._deadline: RunDeadline | None = None
        self.migrated = False  # True once a --then command has run on the restored copies (new_round)

    # -- plumbing --------------------------------------------------------------------------
    def say(self, line: str, transient: bool = False) -> None:
        if self.progress is not None:
            self.progress(line, transient=transient)

    @property
    def clock_start(self) -> float:
        """The run's start on the monotonic clock phases use."""
        return self.stages.clock_start

    @property
    def phases(self) -> list[Phase]:
        return self.stages.phases

    @property
    def failures(self) -> list[GrimoireDrillError]:
        return self.stages.failures

    @property
    def mongo(self) -> DatabaseState:
        return self.engines.mongo

    @property
    def postgres(self) -> DatabaseState:
        return self.engines.postgres

    @property
    def prepared_at(self) -> float | None:
        return self.engines.prepared_at

    @property
    def temp_dir(self) -> Path:
        return self.backup.temp_dir

    def running(self, phase: str) -> AbstractContextManager[None]:
        """Mark ``phase`` as under way while the block runs: what a timeout names."""
        return self.stages.running(phase)

    def current_phase(self) -> str:
        """The phases under way (restores overlap), else checks once the backup was located, else setup.

        No lock: the timeout's signal handler calls this on the main thread, which may hold it.
        """
        running = self.stages.under_way()
        if running:
            return ", ".join(running)
        return "checks" if self.has_stage("locate") else "setup"

    def has_stage(self, name: str) -> bool:
        """True once a stage ran (whatever its outcome): summaries read only what was done."""
        return self.stages.has(name)

    def display(self, text: str) -> str:
        """Paths inside the run's temp copy shown from ``backup_<id>/`` on (the temp dir is gone afterwards)."""
        return self.backup.display(text)

    # -- the run's deadline --------------------------------------------------------------------
    def arm_deadline(self) -> None:
        """Start the run-wide timeout (``--timeout``, else ``limits.run_timeout_s``), counted from the run's start.

        Idempotent (pre-migration rounds share one session, and one deadline); ``close`` disarms it
        before cleaning up. Raises RunTimedOut at once when the time is already up.
        """
        if self._deadline is not None or self.engines.closed:
            return
        seconds = self.config.timeout if self.config.timeout is not None else self.expectations.limits.run_timeout_s
        self._deadline = RunDeadline(seconds, self.current_phase)
        self._deadline.arm(elapsed=time.perf_counter() - self.clock_start)

    @property
    def timed_out(self) -> str | None:
        """The timeout's message once the deadline fired ("the drill timed out after … during …")."""
        return self._deadline.message if self._deadline is not None else None

    def close(self) -> None:
        """Stop every engine and remove the temp dir, whatever happened before; safe to call twice."""
        if self._deadline is not None:
            self._deadline.disarm()  # a timeout must not cut the cleanup short
        self.engines.close()

    def cancel(self) -> None:
        """Interrupted (main thread): end the engines' running tools now, so restore threads return."""
        self.engines.cancel()

    # -- the backup ----------------------------------------------------------------------------
    def located(self) -> archive.BackupRef:
        return self.backup.located()

    def series(self) -> tuple[str, ...] | None:
        return self.backup.series()

    def extracted(self) -> archive.Extracted:
        return self.backup.extracted()

    def backup_info(self) -> dict[str, str]:
        return self.backup.backup_info()

    def mongo_layout(self) -> dict[str, dict[str, CollectionDump]]:
        return self.backup.mongo_layout()

    def export_counts(self) -> ExportCounts:
        return self.backup.export_counts()

    def postgres_dump(self) -> Path:
        return self.backup.postgres_dump()

    # -- engines and restores ------------------------------------------------------------------
    def start_engines(self) -> None:
        self.engines.start_engines()

    def prepare(self) -> None:
        self.engines.prepare()

    def mongo_restore(self) -> MongoRestore:
        return self.engines.mongo_restore()

    def postgres_restore(self) -> PostgresRestore:
        return self.engines.postgres_restore()

    def mongo_database(self, name: str):
        return self.engines.mongo_database(name)

    def in_process_documents(self, name: str):
        return self.engines.in_process_documents(name)

    def postgres_connect(self) -> psycopg.Connection:
        return self.engines.postgres_connect()

    # -- counts --------------------------------------------------------------------------------
    def upload_files(self) -> frozenset[str]:
        return self.counts.upload_files()

    def mongo_source_counts(self) -> dict[str, dict[str, int | None]]:
        return self.counts.mongo_source_counts()

    def postgres_source_counts(self) -> dict[str, int | None] | None:
        return self.counts.postgres_source_counts()

    def source_counts_or_none(self) -> dict[str, Any]:
        return self.counts.source_counts_or_none()

    def restored_counts(self) -> dict[str, Any]:
        return self.counts.restored_counts()

    def new_round(self) -> None:
        """Forget what a check round measured (counts, restored content), keep the restore: for re-checking after --then."""
        self.migrated = True
        self.counts.new_round()
        self.content.new_round()

    def settle_counts(self) -> None:
        """Count while the engines still run, for the summary, even if no check asked for counts;
        then this generation's record (what the next drill compares with)."""
        self.counts.settle()
        if self.has_stage("extract") and self.engines.prepared and not self.engines.closed:
            try:
                self.generation.current()
            except GrimoireDrillError:
                pass  # its parts' failures are reported by their own checks

    # -- generations ------------------------------------------------------------------------------
    def use_history(self, path: Path | None) -> None:
        """Where history.jsonl is: the previous generation is the last full drill of an older backup there."""
        self.previous.history_path = path

    def previous_generation(self) -> PreviousGeneration:
        return self.previous.previous()

    def this_generation(self) -> Generation:
        return self.generation.current()

    def newest_values(self) -> dict[str, Newest]:
        return self.generation.newest_values()

    # -- content equality ----------------------------------------------------------------------
    def mongo_content(self, namespace: str) -> ContentComparison:
        return self.content.mongo(namespace)

    def postgres_content(self, table: str) -> ContentComparison | None:
        return self.content.postgres(table)

    def export_content(self, file: str, collection: str) -> ExportComparison | None:
        return self.content.export(file, collection)

    # -- what the report gets ------------------------------------------------------------------
    def facts(self, checked_at: datetime) -> RunFacts:
        """The run's facts as plain frozen values (see ``pipeline/facts.py``)."""
        return collect_facts(self, checked_at)
