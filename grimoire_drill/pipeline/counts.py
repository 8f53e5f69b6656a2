"""What the backup holds and what was restored, counted once each: documents, rows, upload files.

Why these live together: the counts checks and the summary compare the same three numbers
(in the dump, in the export, in the restored database), and each database is counted on its
own, so a broken MongoDB dump never hides PostgreSQL's counts.

The read that counts the dump also digests its content (``content_digest``), so the content
checks (``pipeline/content.py``) compare against the dump without reading it a second time.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from .. import archive
from ..content_digest import Digest, Sampler, count_and_digest_bson
from ..errors import GrimoireDrillError
from ..expectations import Expectations
from ..pg_source import TableContent, dump_objects, source_counts_and_content, source_row_counts
from .backup import BackupStages
from .prepare import EnginePreparer
from .stages import StageRunner

PLAIN_DUMPS = ("database.sql",)  # the backup's other PostgreSQL dump, read when the restored one cannot be
_PUBLIC_TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"


class Counts:
    """Source counts (dump, export), restored counts, and the uploads' file list."""

    def __init__(self, expectations: Expectations, stages: StageRunner, backup: BackupStages,
                 engines: EnginePreparer):
        self.expectations = expectations
        self.stages = stages
        self.backup = backup
        self.engines = engines
        self._postgres_counted_from: str | None = None
        self._mongo_digests: dict[str, tuple[Digest, bool]] = {}   # namespace -> (digest, re-encoded)
        self._postgres_contents: dict[str, TableContent] = {}

    def upload_files(self) -> frozenset[str]:
        """Regular files under uploads/, as paths relative to it: one walk serves the count and every lookup.

        A link to another upload is that upload; the walk is the archive's (never enters a link).
        """
        def walk() -> frozenset[str]:
            uploads = self.backup.extracted().root / "uploads"
            return archive.regular_files(uploads) if uploads.is_dir() else frozenset()
        return self.stages.run("upload_files", walk)

    def mongo_source_counts(self) -> dict[str, dict[str, int | None]]:
        """Documents per collection in the BSON dump, and objects in its JSON export."""
        def mongo() -> dict[str, dict[str, int | None]]:
            expectations = self.expectations
            root = self.backup.extracted().root
            counts: dict[str, dict[str, int | None]] = {}
            exports = {collection: name for name, collection in expectations.exports}
            loaded = self._counted_by_loader()
            digested = self._digested_by_loader()
            sampler = Sampler(expectations.content.sample)
            engine = self.engines.mongo.engine
            reencode = engine is not None and engine.info.simulated
            for db, colls in sorted(self.backup.mongo_layout().items()):
                if db in expectations.skip_databases:
                    continue
                for name, dump in sorted(colls.items()):
                    namespace = f"{db}.{name}"
                    entry: dict[str, int | None] = {"dump": None}
                    if namespace in loaded and namespace in digested:
                        entry["dump"] = loaded[namespace]
                        self._mongo_digests[namespace] = (digested[namespace], reencode)
                    elif dump.bson_path is not None:
                        entry["dump"], digest = count_and_digest_bson(dump.bson_path, expectations.limits, sampler,
                                                                      reencode=reencode)
                        self._mongo_digests[namespace] = (digest, reencode)
                    if db == expectations.mongo_database and name in exports:
                        export = root / exports[name]
                        entry["export"] = self.backup.export_counts().count(export) if export.is_file() else None
                    counts[namespace] = entry
            return counts
        return self.stages.run("source_counts_mongodb", mongo)

    def _counted_by_loader(self) -> dict[str, int]:
        """Documents the native loader read whole from each dump file: the same count, without a second read."""
        restore = self.engines.mongo.restore
        if self.engines.prepared_at is None or restore.error is not None or restore.value is None:
            return {}
        return {c.namespace: c.source_documents for c in restore.value.collections if c.source_documents is not None}

    def _digested_by_loader(self) -> dict[str, Digest]:
        restore = self.engines.mongo.restore
        if self.engines.prepared_at is None or restore.error is not None or restore.value is None:
            return {}
        return {c.namespace: c.source_digest for c in restore.value.collections if c.source_digest is not None}

    def mongo_dump_digest(self, namespace: str, reencode: bool) -> Digest | None:
        """A collection's content digest, taken by the read that counted it (see mongo_source_counts).

        Read again only if that read hashed the other form (counted before the engine was known).
        """
        self.mongo_source_counts()
        taken = self._mongo_digests.get(namespace)
        if taken is None or taken[1] == reencode:
            return None if taken is None else taken[0]
        dump = next(d for db, colls in self.backup.mongo_layout().items() for d in colls.values()
                    if f"{db}.{d.name}" == namespace)
        return count_and_digest_bson(dump.bson_path, self.expectations.limits,
                                     Sampler(self.expectations.content.sample), reencode=reencode)[1]

    def postgres_dump_contents(self) -> dict[str, TableContent] | None:
        """Each whole COPY block's columns and content digest, from the read that counted the restored dump."""
        if self.postgres_source_counts() is None and not self._postgres_contents:
            return None
        return dict(self._postgres_contents)

    def postgres_source_counts(self) -> dict[str, int | None] | None:
        """Rows per table in the restored dump's COPY blocks (None: unreadable without a server).

        When the restored dump cannot say (cut, garbled: the very case where its restore failed),
        the other dump of the same backup (``database.sql``) gives the counts, so the report still
        has "in dump N, restored —" for every table; ``postgres_counted_from`` names the file.
        """
        def count() -> dict[str, int | None] | None:
            restored = self.backup.postgres_dump()
            counts, self._postgres_contents = source_counts_and_content(
                restored, self.expectations.limits, Sampler(self.expectations.content.sample))
            if counts and all(n is not None for n in counts.values()):
                return counts
            for other in (restored.with_name(name) for name in PLAIN_DUMPS):
                if other != restored and other.is_file():
                    fallback = source_row_counts(other, self.expectations.limits)
                    if fallback:
                        self._postgres_counted_from = other.name
                        return {**fallback, **{t: n for t, n in (counts or {}).items() if n is not None}}
            return counts
        return self.stages.run("source_counts_postgresql", count)

    def postgres_objects(self) -> dict[str, int] | None:
        """The restored dump's table of contents, summarised: objects per kind."""
        return self.stages.run("postgres_objects",
                               lambda: dump_objects(self.backup.postgres_dump(), self.expectations.limits))

    @property
    def postgres_counted_from(self) -> str | None:
        """The dump file the PostgreSQL source counts were read from, when not the restored one."""
        return self._postgres_counted_from

    def source_counts_or_none(self) -> dict[str, Any]:
        """What could be counted, for the summary: a database whose dump is unreadable gives None."""
        counts: dict[str, Any] = {}
        for database, stage in (("mongodb", "source_counts_mongodb"), ("postgresql", "source_counts_postgresql")):
            outcome = self.stages.outcome(stage)
            try:
                counts[database] = outcome.get() if outcome is not None else None
            except GrimoireDrillError:
                counts[database] = None
        objects = self.stages.outcome("postgres_objects")
        if objects is not None:
            try:
                if objects.get() is not None:
                    counts["postgresql_objects"] = objects.get()
            except GrimoireDrillError:
                pass
        if self._postgres_counted_from is not None:
            counts["postgresql_from"] = self._postgres_counted_from
        return counts

    def restored_counts(self) -> dict[str, Any]:
        """Documents per restored collection, rows per restored public table, and the upload files."""
        def count() -> dict[str, Any]:
            engines = self.engines
            counts: dict[str, Any] = {"mongodb": {}, "postgresql": {}}
            if engines.mongo.restore.error is None and engines.mongo.restore.value is not None:
                for coll in engines.mongo.restore.value.collections:
                    db_name, _, name = coll.target.partition(".")
                    counts["mongodb"][coll.namespace] = engines.mongo.engine.document_count(db_name, name)
            if engines.postgres.restore.error is None and engines.postgres.restore.value is not None:
                with engines.postgres_connect() as conn:
                    tables = [row[0] for row in conn.execute(_PUBLIC_TABLES)]
                    for table in tables:
                        counts["postgresql"][table] = conn.execute(
                            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
            counts["uploads_files"] = len(self.upload_files())
            return counts
        self.engines.prepare()
        return self.stages.run("restored_counts", count)

    def new_round(self) -> None:
        """Forget what a check round measured (counts), keep the restore: for re-checking after --then."""
        self.stages.forget("restored_counts")

    def settle(self) -> None:
        """Count while the engines still run, for the summary, even if no check asked for counts.

        Only after a restore: a run of the archive checks alone (``-k archive``) must not start
        servers and restore everything just to fill the summary's counts.
        """
        if not self.stages.has("extract") or self.engines.closed or not self.engines.prepared:  # closed: interrupted
            return
        for stage in (self.mongo_source_counts, self.postgres_source_counts, self.postgres_objects, self.restored_counts):
            try:
                stage()
            except GrimoireDrillError:
                pass  # a broken dump is reported by its checks; count what can be counted
