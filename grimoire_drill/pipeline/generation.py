"""This backup as a generation: what the next drill compares with (counts, dump sizes, indexes, tables,
the newest value of each named timestamp field), measured once from this run's stages.

Why a stage of its own: the drift checks read it, the summary and history.jsonl carry it (so the
next drill has a previous generation without opening this archive again), and each value comes from
a stage that already ran (counts, the mongodump layout) except the newest timestamps, which are one
``max`` per field on the restored copy. A value of the wrong type is left out and counted, never a crash.
"""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any

from psycopg import sql

from .. import archive
from ..errors import GrimoireDrillError
from ..expectations import Expectations
from ..generations import Generation, Newest, as_utc, field_id, sanitized
from ..text import quote
from .backup import BackupStages
from .counts import Counts
from .prepare import DatabaseState, EnginePreparer
from .stages import StageRunner

# Python's datetime holds years 1-9999; BSON and PostgreSQL hold more. Values outside are left out.
EARLIEST = datetime(1, 1, 2)
LATEST = datetime(9999, 12, 30)
PG_TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")
_COLUMN_TYPE = ("SELECT data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s AND column_name = %s")


class GenerationMeasure:
    """``newest_values`` and ``current`` (this backup's ``Generation``), each once."""

    def __init__(self, expectations: Expectations, stages: StageRunner, backup: BackupStages,
                 engines: EnginePreparer, counts: Counts):
        self.expectations = expectations
        self.stages = stages
        self.backup = backup
        self.engines = engines
        self.counts = counts

    # -- the newest timestamps ---------------------------------------------------------------
    def newest_values(self) -> dict[str, Newest]:
        """Each field of ``[generations.freshness]``, measured on the restored copy."""
        def measure() -> dict[str, Newest]:
            self.engines.prepare()
            found: dict[str, Newest] = {}
            for kind, container, name in self.expectations.generations.freshness_fields():
                ident = field_id(kind, container, name)
                reader = self._mongo_newest if kind == "mongodb" else self._postgres_newest
                try:
                    found[ident] = reader(ident, container, name)
                except GrimoireDrillError as error:  # the restore failed: its own checks say so
                    found[ident] = Newest(ident, None, problem=f"not measured: {error.what}")
            return found
        return self.stages.run("newest_values", measure)

    def _mongo_newest(self, ident: str, collection: str, name: str) -> Newest:
        if not _restored(self.engines.mongo):
            return Newest(ident, None, problem="not measured: the MongoDB restore failed")
        coll = self.engines.mongo_database(self.expectations.mongo_database)[collection]
        in_range = {"$type": "date", "$gte": EARLIEST, "$lte": LATEST}
        try:
            top = list(coll.find({name: in_range}, {name: 1}).sort(name, -1).limit(1))
            ignored = coll.count_documents({name: {"$exists": True, "$ne": None, "$not": in_range}})
        except Exception as exc:  # noqa: BLE001 — a driver error on hostile data is a measurement problem
            return Newest(ident, None, problem=f"the query failed: {quote(str(exc) or type(exc).__name__)}")
        value = _dotted(top[0], name) if top else None
        return Newest(ident, as_utc(value) if isinstance(value, datetime) else None, ignored)

    def _postgres_newest(self, ident: str, table: str, column: str) -> Newest:
        if not _restored(self.engines.postgres):
            return Newest(ident, None, problem="not measured: the PostgreSQL restore failed")
        with self.engines.postgres_connect() as conn:
            row = conn.execute(_COLUMN_TYPE, (table, column)).fetchone()
            if row is None:
                return Newest(ident, None, problem=f"no column {quote(column)} in table {quote(table)}")
            target, kind = sql.Identifier(table), sql.Identifier(column)
            if row[0] not in PG_TIME_TYPES:
                count = conn.execute(sql.SQL("SELECT count({}) FROM {}").format(kind, target)).fetchone()[0]
                return Newest(ident, None, count, problem=f"the column is {quote(row[0])}, not a timestamp")
            query = sql.SQL(
                "SELECT max({c}) FILTER (WHERE {ok}), count({c}) FILTER (WHERE NOT ({ok})) FROM {t}").format(
                c=kind, t=target,
                ok=sql.SQL("isfinite({c}) AND {c} BETWEEN '0001-01-02' AND '9999-12-30'").format(c=kind))
            value, ignored = conn.execute(query).fetchone()
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time(), tzinfo=timezone.utc)
        return Newest(ident, None if value is None else as_utc(value), ignored)

    # -- the whole generation ------------------------------------------------------------------
    def current(self) -> Generation:
        """This backup as the next drill will read it from history.jsonl."""
        def measure() -> Generation:
            ref = self.backup.located()
            limits = self.expectations.limits
            cap = limits.max_generation_entries
            truncated = False
            documents = rows = tables = uploads = None
            if not self.engines.closed:
                self.engines.prepare()  # counts and the newest values are read from the restored copy
            if self.engines.prepared and not self.engines.closed:
                restored = self.counts.restored_counts()
                if _restored(self.engines.mongo):
                    documents = self._not_skipped(restored.get("mongodb", {}))
                if _restored(self.engines.postgres):
                    rows = dict(restored.get("postgresql", {}))
                    tables = tuple(sorted(rows))
                uploads = restored.get("uploads_files")
            dump_bytes = self._dump_bytes()
            indexes = self._indexes()
            for section in (documents, rows, dump_bytes, indexes):
                truncated = truncated or (section is not None and len(section) > cap)
            newest = None
            if self.engines.prepared and not self.engines.closed:
                newest = {ident: None if found.value is None else found.as_dict()["value"]
                          for ident, found in self.newest_values().items() if found.problem is None}
            return sanitized(Generation(
                backup_id=ref.backup_id, name=ref.name, documents=_capped(documents, cap), rows=_capped(rows, cap),
                uploads=uploads, archive_bytes=ref.size_bytes, dump_bytes=_capped(dump_bytes, cap),
                indexes=_capped(indexes, cap), tables=None if tables is None else tables[:cap], newest=newest,
                truncated=truncated), limits.max_evidence_chars)
        return self.stages.run("this_generation", measure)

    def _not_skipped(self, counts: dict[str, Any]) -> dict[str, int]:
        skip = set(self.expectations.skip_databases)
        return {ns: n for ns, n in counts.items() if ns.partition(".")[0] not in skip and isinstance(n, int)}

    def _dump_bytes(self) -> dict[str, int] | None:
        """Bytes of each file under mongodb/ (databases not skipped) and postgresql/ of the extracted tree."""
        try:
            root = self.backup.extracted().root
        except GrimoireDrillError:
            return None
        skip = set(self.expectations.skip_databases)
        sizes: dict[str, int] = {}
        for part in ("mongodb", "postgresql"):
            if not (root / part).is_dir():
                continue
            for rel, entry in archive.walk_tree(root / part):
                if entry.is_file(follow_symlinks=False) and not (part == "mongodb" and rel.split("/")[0] in skip):
                    sizes[f"{part}/{rel}"] = entry.stat(follow_symlinks=False).st_size
        return sizes

    def _indexes(self) -> dict[str, tuple[str, ...]] | None:
        """Index names per collection as mongodump's metadata lists them (what the restore creates)."""
        try:
            layout = self.backup.mongo_layout()
        except GrimoireDrillError:
            return None
        skip = set(self.expectations.skip_databases)
        return {f"{db}.{name}": tuple(sorted(index.name for index in dump.indexes))
                for db, collections in layout.items() if db not in skip
                for name, dump in collections.items() if dump.metadata_path is not None}


def _restored(state: DatabaseState) -> bool:
    return state.restore.error is None and state.restore.value is not None


def _dotted(document: Any, path: str) -> Any:
    """``a.b.c`` of a document; None where a step is not a sub-document."""
    for step in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(step)
    return document


def _capped(section: dict | None, cap: int) -> dict | None:
    """At most ``cap`` entries (in name order): a hostile backup of a million collections stays a small record."""
    if section is None or len(section) <= cap:
        return section
    return dict(sorted(section.items())[:cap])
