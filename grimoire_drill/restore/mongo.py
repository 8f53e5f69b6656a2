"""Restore ``mongodb/`` into an engine: ``mongorestore`` when the engine has it, else the native loader.

The native loader does what mongorestore does, in the same order: stream each collection's
BSON in batches (never a whole collection in memory), then build the indexes listed in its
``.metadata.json``. Collections load in parallel. Every failure is recorded against the
collection or index it concerns; the restore goes on so the report shows all the damage.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from bson.raw_bson import RawBSONDocument
from pymongo.errors import PyMongoError

from ..dump import CollectionDump, IndexSpec, iter_bson_batches
from ..engines.contract import MongoEngine
from ..errors import DrillFailure

BATCH_DOCS = 1000
BATCH_BYTES = 8 * 1024 * 1024
TOOL_TIMEOUT_S = 6 * 3600


@dataclass(frozen=True)
class CollectionRestore:
    namespace: str            # source "db.collection"
    target: str               # restored "db.collection" (a scratch db on external servers)
    documents: int
    indexes_built: tuple[str, ...]
    errors: tuple[str, ...]
    seconds: float
    # Whole, valid documents the loader read from the dump file, when it read all of it: the
    # source count without decoding the dump a second time. None: not known (mongorestore, or
    # the load stopped early).
    source_documents: int | None = None


@dataclass(frozen=True)
class MongoRestore:
    method: str               # "mongorestore" | "native"
    collections: tuple[CollectionRestore, ...]
    skipped_databases: tuple[str, ...]
    errors: tuple[str, ...]
    seconds: float
    output_tail: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and all(not c.errors for c in self.collections)

    @property
    def documents(self) -> int:
        return sum(c.documents for c in self.collections)

    def all_errors(self) -> list[str]:
        return list(self.errors) + [e for c in self.collections for e in c.errors]


def _index_kwargs(index: IndexSpec) -> dict[str, Any]:
    kwargs = {k: v for k, v in index.options.items() if k not in {"v", "key", "name", "ns", "background"}}
    kwargs["name"] = index.name
    if index.unique:
        kwargs["unique"] = True
    return kwargs


def load_collection(client, dump: CollectionDump, target_db: str, *, raw_capable: bool,
                    should_stop: Callable[[], bool] = lambda: False) -> CollectionRestore:
    """Stream one collection's documents, then build its indexes (as mongorestore does).

    A real server takes each document's raw bytes (no re-encoding); the in-process store takes
    the documents the validating read already decoded (dates outside Python's range stay BSON
    dates), so each document is decoded once.
    """
    started = time.perf_counter()
    collection = client[target_db][dump.name]
    errors: list[str] = []
    inserted = 0
    source_documents: int | None = None
    namespace = f"{dump.database}.{dump.name}"
    if dump.bson_path is None:
        errors.append(f"{namespace}: metadata without a .bson data file")
    else:
        try:
            for batch in iter_bson_batches(dump.bson_path, raw=raw_capable, max_docs=BATCH_DOCS,
                                           max_bytes=BATCH_BYTES):
                if should_stop():  # the drill was interrupted: a restore thread must not go on for hours
                    errors.append(f"{namespace}: stopped after {inserted} documents: the drill is stopping")
                    return CollectionRestore(namespace, f"{target_db}.{dump.name}", inserted, (), tuple(errors),
                                             time.perf_counter() - started)
                documents = [RawBSONDocument(raw) for raw in batch.raw] if batch.raw is not None else batch.documents
                collection.insert_many(documents, ordered=False)
                inserted += len(documents)
            source_documents = inserted  # every document was read whole and inserted: the dump's own count
        except DrillFailure as failure:
            errors.append(failure.line())
        except PyMongoError as exc:
            errors.append(f"{namespace}: insert failed after {inserted} documents: {exc}")
    if inserted == 0 and not errors and dump.name not in client[target_db].list_collection_names():
        client[target_db].create_collection(dump.name)  # an empty collection still exists after a restore
    built: list[str] = []
    for index in dump.indexes:
        if index.name == "_id_":
            continue
        try:
            collection.create_index(list(index.key), **_index_kwargs(index))
            built.append(index.name)
        except PyMongoError as exc:
            detail = str(exc).splitlines()[0][:300]
            errors.append(f"{namespace}: index {index.name} could not be built: {detail}")
    return CollectionRestore(namespace, f"{target_db}.{dump.name}", inserted, tuple(built), tuple(errors),
                             time.perf_counter() - started, source_documents)


def restore_native(server: MongoEngine, layout: dict[str, dict[str, CollectionDump]], *, skip: Iterable[str], jobs: int,
                   raw_capable: bool) -> MongoRestore:
    """Load every collection of every database not in ``skip``, ``jobs`` collections at a time.

    A server loads collections in parallel (it has cores of its own). The in-process store is
    called with ``jobs=1``: it is Python code under one GIL, where a second loading thread only
    adds switching (a 1 GB load took 143 s with two threads against 135 s with one).
    """
    started = time.perf_counter()
    skipped = tuple(sorted(db for db in layout if db in set(skip)))
    work = [(dump, server.database_name(db)) for db, colls in sorted(layout.items()) if db not in skipped
            for dump in colls.values()]
    work.sort(key=lambda item: -(item[0].bson_path.stat().st_size if item[0].bson_path else 0))
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="mongo-load") as pool:
        should_stop = lambda: getattr(server, "cancelled", False)  # noqa: E731
        results = list(pool.map(lambda item: load_collection(server.client(), item[0], item[1], raw_capable=raw_capable,
                                                             should_stop=should_stop), work))
    results.sort(key=lambda r: r.namespace)
    return MongoRestore("native", tuple(results), skipped, (), time.perf_counter() - started,
                        detail={"documents": sum(r.documents for r in results), "parallel_collections": max(1, jobs)})


def restore_with_mongorestore(server: MongoEngine, dump_root: Path, layout: dict[str, dict[str, CollectionDump]], *,
                              skip: Iterable[str], jobs: int, gzipped: bool) -> MongoRestore:
    """Run the engine's own mongorestore on the dump tree, exactly as ops would."""
    started = time.perf_counter()
    skipped = tuple(sorted(db for db in layout if db in set(skip)))
    args = ["--dir={dump}", f"--numParallelCollections={max(1, jobs)}", "--stopOnError"]
    args += [f"--nsExclude={db}.*" for db in skipped]
    if gzipped:
        args.append("--gzip")
    result = server.run_tool("mongorestore", args, {"dump": dump_root}, timeout=TOOL_TIMEOUT_S)
    client = server.client()
    collections = []
    for db, colls in sorted(layout.items()):
        if db in skipped:
            continue
        target = server.database_name(db)
        for name in sorted(colls):
            count = client[target][name].estimated_document_count()
            built = tuple(n for n in client[target][name].index_information() if n != "_id_")
            collections.append(CollectionRestore(f"{db}.{name}", f"{target}.{name}", count, built, (), 0.0))
    errors = () if result.ok else (f"mongorestore exited {result.returncode}: " + " | ".join(
        result.stderr.strip().splitlines()[-3:]),)
    return MongoRestore("mongorestore", tuple(collections), skipped, errors, time.perf_counter() - started,
                        output_tail=result.stderr[-4000:], detail={"documents": sum(c.documents for c in collections)})


def restore_mongo(server: MongoEngine, dump_root: Path, layout: dict[str, dict[str, CollectionDump]], *,
                  skip: Iterable[str], jobs: int) -> MongoRestore:
    """mongorestore inside/with the engine when it has one, else the native loader."""
    if not layout:
        raise DrillFailure("mongodb/ is empty: MongoDB was down at backup time (mongodump wrote no database, "
                           "so nothing can be restored)", where=str(dump_root),
                           fix="check the MongoDB container and the backup job's log for that night; "
                               "take a new backup once MongoDB is up")
    if server.has_tool("mongorestore"):
        gzipped = any(c.gzipped for colls in layout.values() for c in colls.values())
        return restore_with_mongorestore(server, dump_root, layout, skip=skip, jobs=jobs, gzipped=gzipped)
    simulated = server.info.simulated
    return restore_native(server, layout, skip=skip, jobs=1 if simulated else jobs, raw_capable=not simulated)
