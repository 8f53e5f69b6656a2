"""What a check may ask of the pipeline: the stages it reads, and nothing that starts, stops or reports.

Why a facade: a check that could close the session, arm the deadline or read another round's
phases would make the verdict depend on the order checks run in. The ``drill`` fixture
(``drills/conftest.py``) hands out this view; the list below is every ``drill.`` a check uses.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from .. import archive
from ..dump import CollectionDump
from ..generations import Generation, Newest
from ..export_content import ExportComparison
from ..restore.mongo import MongoRestore
from ..restore.postgres import PostgresRestore

if TYPE_CHECKING:
    from .previous import PreviousGeneration
    from .content import ContentComparison
    from .session import DrillSession


class CheckView:
    """The read-only face of a ``DrillSession`` that checks get (each stage still runs once, on first need)."""

    __slots__ = ("_session",)

    def __init__(self, session: DrillSession):
        self._session = session

    @property
    def now(self) -> datetime:
        """The instant ages are measured from (``--now`` in tests, else the run's start)."""
        return self._session.now

    @property
    def migrated(self) -> bool:
        """True in the round after a --then command: the restored copies are no longer the dump's."""
        return self._session.migrated

    def located(self) -> archive.BackupRef:
        return self._session.located()

    def series(self) -> tuple[str, ...] | None:
        """The backup ids named in the BACKUPS folder, oldest first (names only); None: BACKUPS is one backup."""
        return self._session.series()

    def extracted(self) -> archive.Extracted:
        return self._session.extracted()

    def backup_info(self) -> dict[str, str]:
        return self._session.backup_info()

    def mongo_layout(self) -> dict[str, dict[str, CollectionDump]]:
        return self._session.mongo_layout()

    def postgres_dump(self) -> Path:
        return self._session.postgres_dump()

    def mongo_restore(self) -> MongoRestore:
        return self._session.mongo_restore()

    def postgres_restore(self) -> PostgresRestore:
        return self._session.postgres_restore()

    def mongo_database(self, name: str):
        """The restored database (a scratch name on external servers) as a pymongo Database."""
        return self._session.mongo_database(name)

    def in_process_documents(self, name: str):
        """On the simulated engine, ``collection -> its decoded documents`` read from the store; else None."""
        return self._session.in_process_documents(name)

    def postgres_connect(self) -> psycopg.Connection:
        return self._session.postgres_connect()

    def mongo_source_counts(self) -> dict[str, dict[str, int | None]]:
        return self._session.mongo_source_counts()

    def postgres_source_counts(self) -> dict[str, int | None] | None:
        return self._session.postgres_source_counts()

    def restored_counts(self) -> dict[str, Any]:
        return self._session.restored_counts()

    def upload_files(self) -> frozenset[str]:
        return self._session.upload_files()

    def previous_generation(self) -> PreviousGeneration:
        """The generation before this backup (history.jsonl, else the older archive), or why there is none."""
        return self._session.previous_generation()

    def this_generation(self) -> Generation:
        return self._session.this_generation()

    def newest_values(self) -> dict[str, Newest]:
        return self._session.newest_values()

    def mongo_content(self, namespace: str) -> ContentComparison:
        """The dump's documents of ``namespace`` against the restored ones, by digest (pipeline/content.py)."""
        return self._session.mongo_content(namespace)

    def postgres_content(self, table: str) -> ContentComparison | None:
        """The dump's COPY rows of ``table`` against the restored ones; None without the dump's own data."""
        return self._session.postgres_content(table)

    def export_content(self, file: str, collection: str) -> ExportComparison | None:
        """A JSON export against the dump of its collection, object by object; None when either is absent."""
        return self._session.export_content(file, collection)
