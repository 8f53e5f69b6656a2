"""Read what a backup holds without any database server: mongodump trees and pg dumps.

Why readers of our own: no MongoDB server or ``mongorestore`` may exist where the drill runs,
and a restore that silently stops at a torn document would report a smaller count as if it
were the truth. So every reader here either returns data that is really whole, or raises a
one-line :class:`DrillFailure` naming the file; and every reader streams, because dumps can
be larger than memory.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bson import json_util

from grimoire_drill.bson_stream import (  # noqa: F401 — the BSON reader, re-exported for callers of dump
    FIX_MONGODUMP,
    GZIP_ERRORS,
    PARSE_ERRORS,
    count_bson,
    first_line,
    iter_bson_batches,
    iter_raw_bson,
    open_maybe_gzip,
)
from grimoire_drill.errors import DrillFailure
from grimoire_drill.json_export import count_export, iter_export  # noqa: F401 — the exports' reader, re-exported
from grimoire_drill.limits import Limits
from grimoire_drill.text import printable, quote

PG_HEAD_BYTES = 64 * 1024
PG_CUSTOM_FORMAT = 1  # pg_backup.h: archCustom

# What MongoDB refuses in a database name (mongo/db/namespace_string.cpp, on any OS) and NUL.
DATABASE_NAME_FORBIDDEN = frozenset('/\\. "$*<>:|?\x00')
MAX_NAMESPACE_BYTES = 255  # MongoDB's own ceiling on "db.collection" (a fact of the server, not a resource limit)
# Longest first: "x.metadata.json.gz" must not be taken for a collection "x.metadata.json".
DUMP_SUFFIXES = ((".metadata.json.gz", "metadata"), (".metadata.json", "metadata"),
                 (".bson.gz", "bson"), (".bson", "bson"))

FIX_PG_DUMP = "re-run pg_dump -F c -b (or plain pg_dump for database.sql), or re-copy the archive"


@dataclass(frozen=True)
class IndexSpec:
    """One index as mongodump recorded it; ``options`` is the rest of the spec (``v``, ``sparse``…)."""

    name: str
    key: tuple[tuple[str, int | str], ...]
    unique: bool
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionDump:
    """One collection's files in a mongodump tree. ``bson_path`` is None for views.

    ``problem`` says why the collection cannot be loaded at all (a file name that is not UTF-8,
    which mongodump never writes): the loader reports it against this collection and loads the others.
    """

    database: str
    name: str
    bson_path: Path | None
    metadata_path: Path | None
    gzipped: bool
    indexes: tuple[IndexSpec, ...]
    uuid: str | None
    problem: str | None = None


# --------------------------------------------------------------------------- mongodump


def scan_mongodump(root: Path, limits: Limits | None = None) -> dict[str, dict[str, CollectionDump]]:
    """database -> collection -> files, for a ``mongodump --out`` folder (``backup/mongodb``).

    Top-level files (``prelude.json``, ``oplog.bson``) are not collections and are ignored.
    A missing or empty folder gives {}: the backup job leaves it empty when MongoDB was down,
    and saying so is the drill's job, not the reader's. Names that are not UTF-8 (shown with
    ``\\xff`` escapes) become collections with a ``problem``, never a crash further on.
    """
    limits = Limits() if limits is None else limits
    root = Path(root)
    if not root.is_dir():
        return {}
    tree: dict[str, dict[str, CollectionDump]] = {}
    for db_dir in sorted(path for path in root.iterdir() if path.is_dir()):
        collections = _scan_database(db_dir, limits)
        if collections:
            tree[_shown_name(db_dir.name)] = collections
    return tree


def _is_utf8(name: str) -> bool:
    """False for a name holding surrogate escapes (os.fsdecode's stand-ins for non-UTF-8 bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown_name(name: str) -> str:
    """A name safe for every output and for a database server: non-UTF-8 bytes as ``\\xff`` escapes."""
    return name if _is_utf8(name) else printable(name)


def read_metadata(path: Path, limits: Limits | None = None) -> dict:
    """A ``.metadata.json`` (or ``.gz``) as mongodump writes it: canonical Extended JSON.

    Read bounded: at most ``limits.max_text_file_bytes`` (after gunzip) and lines of at most
    ``limits.max_line_chars``, so a 10 GB or one-line-bomb metadata file is refused, not loaded.
    """
    limits = Limits() if limits is None else limits
    path = Path(path)
    try:
        with open_maybe_gzip(path) as stream:
            raw = stream.read(limits.max_text_file_bytes + 1)
        if len(raw) > limits.max_text_file_bytes:
            raise DrillFailure(f"metadata is larger than {limits.name('max_text_file_bytes')} bytes",
                               where=str(path), fix=FIX_MONGODUMP + "; or raise the limit in [limits]")
        text = raw.decode("utf-8")
        _check_line_lengths(text, limits, path)
        metadata = json_util.loads(text)
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile):
            raise DrillFailure(f"metadata is not valid gzip: {exc}", where=str(path), fix=FIX_MONGODUMP) from exc
        raise DrillFailure(f"cannot read metadata: {exc.strerror or exc}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except GZIP_ERRORS as exc:
        raise DrillFailure("metadata gzip stream is truncated or corrupt", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    except PARSE_ERRORS as exc:
        raise DrillFailure(f"malformed metadata JSON: {first_line(exc)}", where=str(path),
                           fix=FIX_MONGODUMP) from exc
    if not isinstance(metadata, Mapping):
        raise DrillFailure("metadata is not a JSON object", where=str(path), fix=FIX_MONGODUMP)
    return dict(metadata)


def _check_line_lengths(text: str, limits: Limits, path: Path) -> None:
    """Refuse a line longer than ``limits.max_line_chars`` (str.find: linear, no regex)."""
    start, number = 0, 1
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        if end - start > limits.max_line_chars:
            raise DrillFailure(f"line {number} is longer than {limits.name('max_line_chars')} characters",
                               where=str(path), fix=FIX_MONGODUMP + "; or raise the limit in [limits]")
        start, number = end + 1, number + 1


def _scan_database(db_dir: Path, limits: Limits) -> dict[str, CollectionDump]:
    """The collections of one database folder; two files claiming one collection fail, naming both.

    Never pick one: ``recipes.bson`` beside ``recipes.bson.gz``, ``a%2Eb.bson`` beside ``a.b.bson``,
    or a ``.metadata.json`` whose ``collectionName`` is another file's collection would each make
    the restored collection depend on which file came first.
    """
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(db_dir.iterdir()):
        if not path.is_file():
            continue
        for suffix, role in DUMP_SUFFIXES:
            if path.name.endswith(suffix) and len(path.name) > len(suffix):
                stem = path.name[: -len(suffix)]
                roles = found.setdefault(stem, {})
                if role in roles:
                    raise _claimed_twice(db_dir, roles[role], path)
                roles[role] = path
                break
    collections: dict[str, CollectionDump] = {}
    for stem, roles in found.items():
        dump = _collection(db_dir.name, stem, roles.get("bson"), roles.get("metadata"), limits)
        if dump.name in collections:
            earlier = collections[dump.name]
            raise _claimed_twice(db_dir, _first_file(earlier), _first_file(dump), dump.name)
        collections[dump.name] = dump
    return dict(sorted(collections.items()))


def _name_problem(name: str) -> str | None:
    """Why no MongoDB server takes ``name`` as a collection name (pymongo's own rules), or None."""
    if not _is_utf8(name):
        return "its collectionName is not valid Unicode (a lone surrogate): not loaded"
    if len(name.encode("utf-8")) > MAX_NAMESPACE_BYTES:
        return f"its name is longer than MongoDB's {MAX_NAMESPACE_BYTES} bytes: not loaded"
    if not name or "$" in name or "\x00" in name or name.startswith(".") or name.endswith("."):
        return f"{quote(name[:1000])!r} is not a name MongoDB takes for a collection (empty, '$', NUL, or a dot at an end): not loaded"
    return None


def _first_file(dump: CollectionDump) -> Path:
    path = dump.bson_path if dump.bson_path is not None else dump.metadata_path
    assert path is not None  # a collection exists because one of its files does
    return path


def _claimed_twice(db_dir: Path, first: Path, second: Path, name: str | None = None) -> DrillFailure:
    shown = "one collection" if name is None else f"collection {printable(name)!r}"
    return DrillFailure(f"both {printable(first.name)} and {printable(second.name)} claim {shown}",
                        where=str(db_dir), fix=FIX_MONGODUMP + " (one dump per collection, from one mongodump run)")


def _collection(database: str, stem: str, bson_path: Path | None, metadata_path: Path | None,
                limits: Limits) -> CollectionDump:
    if not _is_utf8(stem) or not _is_utf8(database):
        what = "file name" if _is_utf8(database) else "database folder name"
        return CollectionDump(_shown_name(database), _shown_name(stem), bson_path, metadata_path, False, (), None,
                              problem=f"the {what} is not UTF-8 (mongodump writes UTF-8 names): not loaded")
    if not database or set(database) & DATABASE_NAME_FORBIDDEN:
        return CollectionDump(database, _shown_name(stem), bson_path, metadata_path, False, (), None,
                              problem=f"the database folder {quote(database)!r} is not a name MongoDB takes "
                                      "(a space or one of /\\.\"$*<>:|?): not loaded")
    name = unquote(stem)  # mongodump percent-escapes awkward characters in file names
    indexes: tuple[IndexSpec, ...] = ()
    uuid = None
    if metadata_path is not None:
        metadata = read_metadata(metadata_path, limits)
        recorded = metadata.get("collectionName")
        if isinstance(recorded, str) and recorded:
            name = recorded
        indexes = _indexes(metadata, metadata_path)
        uuid = metadata.get("uuid") if isinstance(metadata.get("uuid"), str) else None
    gzipped = any(path is not None and path.name.endswith(".gz") for path in (bson_path, metadata_path))
    problem = _name_problem(name)
    shown = _shown_name(name) if problem is None else quote(name[:1000])
    return CollectionDump(database, shown, bson_path, metadata_path, gzipped, indexes, uuid, problem)


def _indexes(metadata: Mapping, path: Path) -> tuple[IndexSpec, ...]:
    specs = metadata.get("indexes", [])
    if not isinstance(specs, list):
        raise DrillFailure("metadata 'indexes' is not a list", where=str(path), fix=FIX_MONGODUMP)
    return tuple(_index(spec, position, path) for position, spec in enumerate(specs))


def _index(spec: Any, position: int, path: Path) -> IndexSpec:
    def bad(reason: str) -> DrillFailure:
        return DrillFailure(f"index #{position} in metadata {reason}", where=str(path), fix=FIX_MONGODUMP)

    if not isinstance(spec, Mapping):
        raise bad("is not an object")
    name, key = spec.get("name"), spec.get("key")
    if not isinstance(name, str) or not name:
        raise bad("has no name")
    if not isinstance(key, Mapping) or not key:
        raise bad(f"({name}) has no key")
    fields = tuple((str(field_name), _direction(value, bad)) for field_name, value in key.items())
    options = {option: value for option, value in spec.items() if option not in {"name", "key", "unique"}}
    return IndexSpec(name=name, key=fields, unique=bool(spec.get("unique", False)), options=options)


def _direction(value: Any, bad) -> int | str:
    """1 / -1 / "text" / "2dsphere" / "hashed"…; doubles from old shells (1.0) become ints."""
    if isinstance(value, bool):
        raise bad(f"has a boolean key direction {value!r}")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value:
        return value
    raise bad(f"has an unusable key direction {value!r}")


# --------------------------------------------------------------------------- PostgreSQL


def pg_dump_format(path: Path) -> str:
    """``"custom"`` for a ``pg_dump -F c`` archive (PGDMP header checked), ``"plain"`` for SQL text."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(PG_HEAD_BYTES)
    except OSError as exc:
        raise DrillFailure(f"cannot read the PostgreSQL dump: {exc.strerror or exc}", where=str(path),
                           fix=FIX_PG_DUMP) from exc
    if head.startswith(b"PGDMP"):
        _check_custom_header(head, path)
        return "custom"
    text = head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    # SQL text has no NUL bytes; a pg_dump -F t archive does, and holds a restore.sql that says
    # "PostgreSQL database dump" too.
    if b"\0" not in head and (text.startswith("--") or "PostgreSQL database dump" in text):
        return "plain"
    if head[257:262] == b"ustar":
        what = "a tar archive (pg_dump -F t?), not a custom archive or a plain SQL dump"
    elif not head:
        what = "empty"
    else:
        what = "neither a pg_dump custom archive (PGDMP) nor a plain SQL dump"
    raise DrillFailure(f"the PostgreSQL dump is {what}", where=str(path), fix=FIX_PG_DUMP)


def _check_custom_header(head: bytes, path: Path) -> None:
    """The fields pg_restore checks first (pg_backup_archiver.c ReadHead): version, sizes, format."""
    def bad(reason: str) -> DrillFailure:
        return DrillFailure(f"damaged pg_dump header: {reason}", where=str(path), fix=FIX_PG_DUMP)

    if len(head) < 8:
        raise bad("it ends inside the header")
    major, minor = head[5], head[6]
    if major != 1:
        raise bad(f"archive version {major}.{minor} is not 1.x")
    position = 8 if minor > 0 else 7  # the revision byte exists from 1.1 on
    # offSize exists from 1.7 on; before that it equals intSize.
    layout = ("int", "off", "format") if minor >= 7 else ("int", "format")
    if len(head) < position + len(layout):
        raise bad("it ends inside the header")
    fields = dict(zip(layout, head[position:position + len(layout)], strict=True))
    int_size, off_size = fields["int"], fields.get("off", fields["int"])
    if not 1 <= int_size <= 32 or not 1 <= off_size <= 32:
        raise bad(f"integer size {int_size} / offset size {off_size} out of range")
    if fields["format"] != PG_CUSTOM_FORMAT:
        raise bad(f"archive format {fields['format']}, not custom ({PG_CUSTOM_FORMAT}); use pg_dump -F c")
