"""Restore ``mongodb/`` into an engine: ``mongorestore`` when the engine has it, else the native loader.

The native loader does what mongorestore does, in the same order: stream each collection's
BSON in batches (never a whole collection in memory), then build the indexes listed in its
``.metadata.json``. Collections load in parallel. Every failure is recorded against the
collection or index it concerns; the restore goes on so the report shows all the damage.

Why every exception of a load is caught here: the documents come from the backup, and the
store rejects some of them in its own ways (``$``-prefixed top-level fields as a
``bson.errors.InvalidDocument``, an array ``_id`` as a ``TypeError`` in the in-process store,
a bad collection name as ``InvalidName``). Each is a failed restore of that collection, never
a crash of the drill, and the other collections still load.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from bson.raw_bson import RawBSONDocument

from ..content_digest import Digest, DocumentDigester, Sampler
from ..dump import CollectionDump, IndexSpec, iter_bson_batches
from ..engines.contract import MongoEngine
from ..errors import DrillFailure, HarnessError
from ..limits import Limits
from ..text import quote
from .mongo_tool_log import failed_documents, is_connection_failure, tool_errors

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
    # The dump file's content digest, taken in the same read (content_digest): None when not known.
    source_digest: Digest | None = None


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


def _why(exc: BaseException, limits: Limits) -> str:
    """An exception the store raised on backup content, as quotable text: its type and first line."""
    lines = str(exc).strip().splitlines()
    return quote(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__, limits.max_quoted_chars)


def load_collection(client, dump: CollectionDump, target_db: str, *, raw_capable: bool,
                    should_stop: Callable[[], bool] = lambda: False,
                    limits: Limits | None = None, content_sample: float = 1.0) -> CollectionRestore:
    """Stream one collection's documents, then build its indexes (as mongorestore does).

    A real server takes each document's raw bytes (no re-encoding); the in-process store takes
    the documents the validating read already decoded (dates outside Python's range stay BSON
    dates), so each document is decoded once. Whatever the store raises on this collection's
    content is recorded as its error (see the module docstring); only our own HarnessError and
    interrupts go up. The same read digests the dump's documents (``source_digest``, a fraction
    ``content_sample`` of them), so the content check never reads the dump again.
    """
    limits = Limits() if limits is None else limits
    started = time.perf_counter()
    namespace = f"{dump.database}.{dump.name}"
    shown = quote(namespace, limits.max_quoted_chars)
    target = f"{target_db}.{dump.name}"
    errors: list[str] = []
    inserted = 0
    source_documents: int | None = None
    source_digest: Digest | None = None
    digester = DocumentDigester(Sampler(content_sample), reencode=not raw_capable)
    built: list[str] = []
    try:
        collection = client[target_db][dump.name]
        if dump.bson_path is None:
            errors.append(f"{shown}: metadata without a .bson data file")
        else:
            batch_start = 0
            try:
                for batch in iter_bson_batches(dump.bson_path, raw=raw_capable, max_docs=BATCH_DOCS,
                                               max_bytes=BATCH_BYTES, limits=limits):
                    if should_stop():  # the drill was interrupted: a restore thread must not go on for hours
                        errors.append(f"{shown}: stopped after {inserted} documents: the drill is stopping")
                        return CollectionRestore(namespace, target, inserted, (), tuple(errors),
                                                 time.perf_counter() - started)
                    batch_start = batch.start
                    digester.add_batch(batch.block, batch.spans, batch.documents)
                    documents = ([RawBSONDocument(raw) for raw in batch.raw] if batch.raw is not None
                                 else batch.documents)
                    collection.insert_many(documents, ordered=False)
                    inserted += len(documents)
                source_documents = inserted  # every document was read whole and inserted: the dump's own count
                source_digest = digester.result()
            except (DrillFailure, HarnessError):
                raise
            except Exception as exc:  # noqa: BLE001 — the store refused our content (see the module docstring)
                errors.append(f"{shown}: the server refused the documents from byte {batch_start} of "
                              f"{quote(dump.bson_path.name, limits.max_quoted_chars)} (after {inserted} "
                              f"documents): {_why(exc, limits)}")
        if inserted == 0 and not errors and dump.name not in client[target_db].list_collection_names():
            client[target_db].create_collection(dump.name)  # an empty collection still exists after a restore
        for index in dump.indexes:
            if index.name == "_id_":
                continue
            try:
                collection.create_index(list(index.key), **_index_kwargs(index))
                built.append(index.name)
            except HarnessError:
                raise
            except Exception as exc:  # noqa: BLE001 — an index spec from the dump the store refuses
                errors.append(f"{shown}: index {quote(index.name, limits.max_quoted_chars)} could not be "
                              f"built: {_why(exc, limits)}")
    except DrillFailure as failure:
        errors.append(f"{shown}: {failure.line()}")
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 — e.g. a collection name the server refuses
        errors.append(f"{shown}: not restored: {_why(exc, limits)}")
    return CollectionRestore(namespace, target, inserted, tuple(built), tuple(errors),
                             time.perf_counter() - started, source_documents, source_digest)


def _loadable(layout: dict[str, dict[str, CollectionDump]], skipped: tuple[str, ...],
              limits: Limits) -> tuple[list[tuple[str, CollectionDump]], tuple[str, ...]]:
    """(database, dump) pairs to restore, and one error per collection that cannot be (its ``problem``).

    A collection with a problem is not offered to the server at all: its name is one no server
    takes, so nothing later (counts, checks) may ask the server about it.
    """
    loadable, errors = [], []
    for db, colls in sorted(layout.items()):
        if db in skipped:
            continue
        for dump in colls.values():
            if dump.problem is None:
                loadable.append((db, dump))
            else:
                errors.append(f"{quote(f'{db}.{dump.name}', limits.max_quoted_chars)}: {dump.problem}")
    return loadable, tuple(errors)


def _dump_bytes(dump: CollectionDump) -> int:
    try:
        return dump.bson_path.stat().st_size if dump.bson_path is not None else 0
    except OSError:
        return 0  # the load reports the unreadable file


def restore_native(server: MongoEngine, layout: dict[str, dict[str, CollectionDump]], *, skip: Iterable[str], jobs: int,
                   raw_capable: bool, limits: Limits | None = None, content_sample: float = 1.0) -> MongoRestore:
    """Load every collection of every database not in ``skip``, ``jobs`` collections at a time.

    A server loads collections in parallel (it has cores of its own). The in-process store is
    called with ``jobs=1``: it is Python code under one GIL, where a second loading thread only
    adds switching (a 1 GB load took 143 s with two threads against 135 s with one).
    """
    limits = Limits() if limits is None else limits
    started = time.perf_counter()
    skipped = tuple(sorted(db for db in layout if db in set(skip)))
    loadable, errors = _loadable(layout, skipped, limits)
    work = [(dump, server.database_name(db)) for db, dump in loadable]
    work.sort(key=lambda item: -_dump_bytes(item[0]))
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="mongo-load") as pool:
        should_stop = lambda: getattr(server, "cancelled", False)  # noqa: E731
        results = list(pool.map(lambda item: load_collection(server.client(), item[0], item[1], raw_capable=raw_capable,
                                                             should_stop=should_stop, limits=limits,
                                                             content_sample=content_sample), work))
    results.sort(key=lambda r: r.namespace)
    return MongoRestore("native", tuple(results), skipped, errors, time.perf_counter() - started,
                        detail={"documents": sum(r.documents for r in results), "parallel_collections": max(1, jobs)})


def _ns_pattern(db: str, name: str) -> str:
    """``db.name`` for --nsInclude, its wildcard and escape characters escaped (mongorestore's ns syntax)."""
    return f"{db}.{name}".replace("\\", "\\\\").replace("*", "\\*")


def restore_with_mongorestore(server: MongoEngine, dump_root: Path, layout: dict[str, dict[str, CollectionDump]], *,
                              skip: Iterable[str], jobs: int, gzipped: bool,
                              limits: Limits | None = None) -> MongoRestore:
    """Run the engine's own mongorestore on the dump tree, exactly as ops would, one collection at a time.

    Why one run per collection (``--nsInclude db.coll``): mongorestore stops every collection at
    the first error of any, so one truncated file would read as "every other collection missing".
    Each run's error is parsed out of its stderr (``mongo_tool_log``) and recorded against its
    collection, as the native loader does; the raw stderr stays in ``output_tail``.
    """
    limits = Limits() if limits is None else limits
    started = time.perf_counter()
    skipped = tuple(sorted(db for db in layout if db in set(skip)))
    loadable, problems = _loadable(layout, skipped, limits)
    client = server.client()
    collections, tails = [], []
    for db, dump in sorted(loadable, key=lambda pair: (pair[0], pair[1].name)):
        collections.append(_mongorestore_one(server, client, dump_root, db, dump, jobs=jobs, gzipped=gzipped,
                                             limits=limits, tails=tails))
    return MongoRestore("mongorestore", tuple(collections), skipped, problems, time.perf_counter() - started,
                        output_tail="\n".join(tails)[-4000:],
                        detail={"documents": sum(c.documents for c in collections), "runs": len(collections)})


def _mongorestore_one(server: MongoEngine, client, dump_root: Path, db: str, dump: CollectionDump, *, jobs: int,
                      gzipped: bool, limits: Limits, tails: list[str]) -> CollectionRestore:
    """One collection through mongorestore; its errors, led by the real cause (E11000, the invalid BSON)."""
    began = time.perf_counter()
    namespace, shown = f"{db}.{dump.name}", quote(f"{db}.{dump.name}", limits.max_quoted_chars)
    args = ["--dir={dump}", f"--nsInclude={_ns_pattern(db, dump.name)}",
            f"--numInsertionWorkersPerCollection={max(1, jobs)}", "--stopOnError"]
    if gzipped:
        args.append("--gzip")
    result = server.run_tool("mongorestore", args, {"dump": dump_root}, timeout=TOOL_TIMEOUT_S)
    if not result.ok and is_connection_failure(result.stderr):
        raise HarnessError(f"mongorestore could not reach the MongoDB server (exit {result.returncode})",
                           fix="check the engine's server; the backup was not tested")
    errors: list[str] = []
    if not result.ok:
        causes = tool_errors(result.stderr, limits.max_quoted_chars)
        failed = failed_documents(result.stderr)
        lead = causes[0] if causes else f"exit {result.returncode} without an error line (see output_tail)"
        more = f" (+{len(causes) - 1} more error line(s) in the evidence)" if len(causes) > 1 else ""
        count = f"; {failed} document(s) failed to restore" if failed else ""
        errors.append(f"{shown}: mongorestore: {lead}{more}{count}")
        tails.append(f"--- {namespace}: exit {result.returncode}\n{result.stderr[-2000:]}")
    target, name = server.database_name(db), dump.name
    count = client[target][name].estimated_document_count()
    built = tuple(n for n in client[target][name].index_information() if n != "_id_")
    return CollectionRestore(namespace, f"{target}.{name}", count, built, tuple(errors), time.perf_counter() - began)


def restore_mongo(server: MongoEngine, dump_root: Path, layout: dict[str, dict[str, CollectionDump]], *, skip: Iterable[str],
                  jobs: int, limits: Limits | None = None, content_sample: float = 1.0) -> MongoRestore:
    """mongorestore inside/with the engine when it has one, else the native loader (which digests as it reads)."""
    if not layout:
        raise DrillFailure("mongodb/ is empty: MongoDB was down at backup time (mongodump wrote no database, "
                           "so nothing can be restored)", where=str(dump_root),
                           fix="check the MongoDB container and the backup job's log for that night; "
                               "take a new backup once MongoDB is up")
    if server.has_tool("mongorestore"):
        gzipped = any(c.gzipped for colls in layout.values() for c in colls.values())
        return restore_with_mongorestore(server, dump_root, layout, skip=skip, jobs=jobs, gzipped=gzipped,
                                         limits=limits)
    simulated = server.info.simulated
    return restore_native(server, layout, skip=skip, jobs=1 if simulated else jobs, raw_capable=not simulated,
                          limits=limits, content_sample=content_sample)
