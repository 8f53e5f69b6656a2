"""Content equality, dump = restored: each collection's and table's digest on both sides, once each.

Why here: the dump side comes from the read that already counted the dump (the native loader,
or ``Counts``), the restored side from the server as raw bytes (raw BSON; ``COPY … TO STDOUT``),
so the comparison costs one hash per document or row and no second read of the dump. Only on a
mismatch are both sides read again, keyed, to name the first differing ``_id`` or primary key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from ..content_digest import (
    Difference,
    Digest,
    DigestSum,
    DocumentDigester,
    Keyed,
    Sampler,
    bson_id_key,
    first_difference,
    keyed_bson,
    shown_id,
)
from ..errors import DrillFailure
from ..expectations import Expectations
from ..export_content import ExportComparison
from ..pg_source import TableContent, keyed_rows, row_key
from ..text import quote
from .backup import BackupStages
from .counts import Counts
from .prepare import EnginePreparer
from .stages import StageRunner

REENCODED = ("re-encoded: the simulated engine (mongomock) cannot return raw BSON, so both sides hash "
             "bson.encode of the decoded document")
_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""
# The session the restored rows are read in: the text pg_dump writes (pg_dump.c setup_connection).
_COPY_SESSION = ("SET DateStyle = ISO", "SET IntervalStyle = postgres", "SET extra_float_digits = 3",
                 "SET bytea_output = hex", "SET client_encoding = 'UTF8'", "SET row_security = off")


@dataclass(frozen=True)
class ContentComparison:
    """One collection or table compared: both digests, how, and the first difference on a mismatch."""

    name: str                       # "legrimoire.recipes" or "recipes"
    dump: Digest
    restored: Digest
    sample: float
    method: str
    difference: Difference | None = None
    key: str | None = None          # the first differing _id or primary key, as a message shows it
    key_columns: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return self.dump == self.restored

    @property
    def reencoded(self) -> bool:
        """Hashed as ``bson.encode`` of decoded documents (the simulated engine), not raw bytes."""
        return self.method == REENCODED

    @property
    def sampled(self) -> bool:
        return self.sample < 1.0

    def evidence(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dump": self.dump.as_dict(), "restored": self.restored.as_dict(),
                                "sample": self.sample, "method": self.method, **self.detail}
        if self.difference is not None:
            data["difference"] = {"kind": self.difference.kind, "key": self.key,
                                  "dump_sha256": self.difference.dump_hash,
                                  "restored_sha256": self.difference.restored_hash,
                                  "buckets": self.difference.buckets, "reason": self.difference.reason}
        if self.key_columns:
            data["key_columns"] = list(self.key_columns)
        return data


class Content:
    """Per-collection and per-table content comparisons, each run once (a new --then round reruns them)."""

    def __init__(self, expectations: Expectations, stages: StageRunner, backup: BackupStages,
                 engines: EnginePreparer, counts: Counts):
        self.expectations = expectations
        self.stages = stages
        self.backup = backup
        self.engines = engines
        self.counts = counts
        self._names: set[str] = set()

    @property
    def _sampler(self) -> Sampler:
        return Sampler(self.expectations.content.sample)

    def _stage(self, name: str, compute: Callable[[], Any]) -> Any:
        """Run a comparison once; its time goes in its evidence (``seconds``), for the bench's share."""
        def timed() -> Any:
            started = time.perf_counter()
            value = compute()
            if isinstance(value, ContentComparison):
                value = replace(value, detail={**value.detail, "seconds": round(time.perf_counter() - started, 3)})
            return value
        self._names.add(name)
        return self.stages.run(name, timed)

    def new_round(self) -> None:
        """After --then: compare the restored side again (the dump side is the counts' and stays)."""
        for name in self._names:
            self.stages.forget(name)

    # -- MongoDB -----------------------------------------------------------------------------
    def mongo(self, namespace: str) -> ContentComparison:
        """The dump's documents of ``namespace`` against the restored collection's, byte for byte."""
        return self._stage(f"content_mongodb[{namespace}]", lambda: self._compare_mongo(namespace))

    def _compare_mongo(self, namespace: str) -> ContentComparison:
        restore = self.engines.mongo_restore()
        engine = self.engines.mongo.engine
        reencode = engine.info.simulated
        dumped = self.counts.mongo_dump_digest(namespace, reencode)
        collection = next((c for c in restore.collections if c.namespace == namespace), None)
        if dumped is None or collection is None:
            raise DrillFailure(f"{namespace}: not both in the dump and restored, no content to compare",
                               where=f"mongodb/{namespace.replace('.', '/', 1)}.bson",
                               fix="see the counts checks for this collection")
        db_name, _, name = collection.target.partition(".")
        sampler = self._sampler
        restored = self._restored_collection(db_name, name, sampler, reencode)
        method = REENCODED if reencode else "raw BSON: sha256 of each document's bytes, dump and server"
        comparison = ContentComparison(namespace, dumped, restored, sampler.fraction, method)
        if comparison.equal:
            return comparison
        dump = next(d for db, colls in self.backup.mongo_layout().items() for d in colls.values()
                    if f"{db}.{d.name}" == namespace)
        limits = self.expectations.limits
        difference = first_difference(
            lambda: keyed_bson(dump.bson_path, limits, sampler, reencode=reencode),
            lambda: self._keyed_collection(db_name, name, sampler, reencode),
            expected=max(dumped.count, restored.count), max_keys=limits.max_keyed_documents)
        key = None
        if difference is not None and difference.key is not None:
            key = quote(shown_id(difference.key), limits.max_quoted_chars)
        return ContentComparison(namespace, dumped, restored, sampler.fraction, method, difference, key)

    def _restored_collection(self, db_name: str, name: str, sampler: Sampler, reencode: bool) -> Digest:
        """The restored side: the engine's stored bytes (raw BSON, or re-encoded by the simulated store)."""
        digester = DocumentDigester(sampler)
        for body in self.engines.mongo.engine.stored_documents(db_name, name):
            digester.add_raw(body)
        return digester.result()

    def _keyed_collection(self, db_name: str, name: str, sampler: Sampler, reencode: bool) -> Keyed:
        for body in self.engines.mongo.engine.stored_documents(db_name, name):
            key = bson_id_key(body)
            if sampler.keeps(key):
                yield key, hashlib.sha256(body).digest()

    # -- the JSON exports --------------------------------------------------------------------
    def export(self, file: str, collection: str) -> ExportComparison | None:
        """The export ``file`` against the dump of ``collection``, object by object; None when either is absent."""
        def compare() -> ExportComparison | None:
            export = self.backup.extracted().root / file
            if not export.is_file():
                return None
            return self.backup.export_counts().content(export)  # compared in the parse that counts it
        return self.stages.run(f"content_export[{file}]", compare)

    # -- PostgreSQL --------------------------------------------------------------------------
    def postgres(self, table: str) -> ContentComparison | None:
        """The dump's COPY rows of ``table`` against ``COPY table TO STDOUT``; None without the dump's own data."""
        return self._stage(f"content_postgresql[{table}]", lambda: self._compare_postgres(table))

    def _compare_postgres(self, table: str) -> ContentComparison | None:
        self.engines.postgres_restore()
        contents = self.counts.postgres_dump_contents()
        if contents is None:
            return None
        dumped = contents.get(table)
        limits = self.expectations.limits
        shown = quote(table, limits.max_quoted_chars)
        dump_name = f"postgresql/{self.backup.postgres_dump().name}"
        if dumped is None:
            raise DrillFailure(f"table {shown}: no data block in {dump_name}, no content to compare", where=dump_name,
                               fix="see postgresql.table and the counts checks for this table")
        if dumped.columns is None:
            raise DrillFailure(f"table {shown}: its COPY line is longer than {limits.name('max_line_chars')} "
                               "characters, so its column list cannot be read", where=dump_name,
                               fix="raise limits.max_line_chars in expectations.toml")
        sampler = self._sampler
        method = f"COPY text: sha256 of each row, columns in the dump's order, TimeZone {self.expectations.content.postgres_timezone}"
        try:
            with self.engines.postgres_connect() as conn:
                self._copy_session(conn)
                restored = _digest_rows(self._copy_out(conn, dumped), sampler)
                if restored == dumped.digest:
                    return ContentComparison(table, dumped.digest, restored, sampler.fraction, method)
                key_columns = self._primary_key(conn, dumped)
        except psycopg.Error as exc:
            raise DrillFailure(f"table {shown}: the restored rows could not be read back: "
                               f"{quote(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, limits.max_quoted_chars)}",
                               where=dump_name, fix="see the restore's errors for this table") from exc
        positions = tuple(dumped.columns.index(c) for c in key_columns) if key_columns else None
        difference = first_difference(
            keyed_rows(self.backup.postgres_dump(), limits, dumped.schema, table, positions, sampler),
            lambda: self._keyed_table(dumped, positions, sampler),
            expected=max(dumped.digest.count, restored.count), max_keys=limits.max_keyed_documents)
        key = None
        if difference is not None and difference.key is not None:
            key = _shown_key(difference.key, key_columns, limits.max_quoted_chars)
        return ContentComparison(table, dumped.digest, restored, sampler.fraction, method, difference, key,
                                 key_columns)

    def _copy_session(self, conn: psycopg.Connection) -> None:
        for statement in _COPY_SESSION:
            conn.execute(statement)
        conn.execute("SELECT set_config('TimeZone', %s, false)", (self.expectations.content.postgres_timezone,))

    def _copy_out(self, conn: psycopg.Connection, dumped: TableContent) -> Iterator[bytes]:
        """The restored rows of ``dumped``'s table, as COPY text lines without their newline."""
        target = (sql.Identifier(dumped.schema, dumped.table) if dumped.schema else sql.Identifier(dumped.table))
        columns = (sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, dumped.columns)))
                   if dumped.columns else sql.SQL(""))
        with conn.cursor() as cursor:
            with cursor.copy(sql.SQL("COPY {}{} TO STDOUT").format(target, columns)) as copy:
                pending = b""
                for chunk in copy:
                    data = pending + bytes(chunk)
                    *rows, pending = data.split(b"\n")
                    yield from rows
                if pending:
                    yield pending

    def _primary_key(self, conn: psycopg.Connection, dumped: TableContent) -> tuple[str, ...]:
        """The restored table's primary key columns, when all are in the dump's COPY list (else: none)."""
        name = ".".join(f'"{part}"' for part in ((dumped.schema,) if dumped.schema else ()) + (dumped.table,))
        columns = tuple(row[0] for row in conn.execute(_PRIMARY_KEY, (name,)))
        return columns if columns and all(c in (dumped.columns or ()) for c in columns) else ()

    def _keyed_table(self, dumped: TableContent, positions: tuple[int, ...] | None, sampler: Sampler) -> Keyed:
        with self.engines.postgres_connect() as conn:
            self._copy_session(conn)
            for row in self._copy_out(conn, dumped):
                if sampler.full or sampler.keeps(row_key(row, (0,))):
                    yield row_key(row, positions), hashlib.sha256(row).digest()


def _digest_rows(rows: Iterator[bytes], sampler: Sampler) -> Digest:
    sums = DigestSum()
    sha256 = hashlib.sha256
    for row in rows:
        if sampler.full or sampler.keeps(row_key(row, (0,))):
            sums.add_hash(sha256(row).digest())
    return sums.result()


def _shown_key(key: bytes, columns: tuple[str, ...], max_chars: int) -> str:
    """``id=42`` (the primary key's COPY text), or the whole row for a table without one."""
    fields = key.split(b"\t")
    if columns and len(fields) == len(columns):
        text = ", ".join(f"{c}={f.decode('utf-8', errors='replace')}" for c, f in zip(columns, fields))
    else:
        text = "row " + key.decode("utf-8", errors="replace")
    return quote(text, max_chars)
