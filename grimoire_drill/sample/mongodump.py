"""``mongodump --out`` of the app's server, in mongodump's own file format, streamed; and the JSON exports.

No MongoDB server can be had where samples are made, so the BSON files and canonical Extended
JSON metadata are written the way mongodump 100.x writes them, byte for byte.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO

import bson
from bson import SON, json_util

from . import data
from .job import MONGO_DB, MONGO_INDEXES, MONGO_SERVER_VERSION, MONGO_TOOLS_VERSION, Job


@contextmanager
def _dump_output(path: Path, zipped: bool) -> Iterator[IO[bytes]]:
    """A dump file as mongodump writes it: plain, or gzip without name and mtime (Go's gzip writer)."""
    with ExitStack() as stack:
        raw = stack.enter_context(open(path if not zipped else path.with_name(path.name + ".gz"), "wb"))
        if zipped:
            yield stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0))
        else:
            yield raw


DANGLING_PARENT = "en:discontinued-foods"   # the dangling-reference defect's parent: no category has it


def write_mongodump(root: Path, job: Job) -> None:
    mongo = root / "mongodb"
    app = mongo / MONGO_DB
    admin = mongo / "admin"
    app.mkdir()
    admin.mkdir()
    seed, counts, when = job.seed, job.counts, job.content_time
    exports = {"recipes": root / "recipes_export.json", "ingredients": root / "ingredients_export.json"}

    def ingredients() -> Iterator[dict]:
        for index in range(counts.ingredients):
            yield data.ingredient_doc(seed, index, counts, when, duplicate_off_id=job.plan.duplicate_off_id)

    def recipes() -> Iterator[dict]:
        for index in range(counts.recipes):
            yield data.recipe_doc(seed, data.recipe_facts(seed, index, counts, when))

    def categories() -> Iterator[dict]:
        for index in range(counts.categories):
            doc = data.category_doc(seed, index, counts, when)
            if job.plan.dangling_parent and index == counts.categories - 1:
                doc["parents"] = [DANGLING_PARENT]
            yield doc

    _write_collection(app, "ingredients", ingredients(), job, export=(exports["ingredients"], data.ingredient_export))
    _write_collection(app, "recipes", recipes(), job, export=(exports["recipes"], data.recipe_export))
    _write_collection(app, "categories", categories(), job)
    _write_collection(admin, "system.version", iter(data.system_version_docs()), job)
    with _dump_output(mongo / "prelude.json", job.gzip_dump) as out:
        out.write(json.dumps({"ServerVersion": MONGO_SERVER_VERSION, "ToolVersion": MONGO_TOOLS_VERSION},
                             separators=(",", ":")).encode())


def _write_collection(db_dir: Path, name: str, docs: Iterable[dict], job: Job,
                      export: tuple[Path, Callable[[dict], dict]] | None = None) -> int:
    """``<name>.bson`` (documents back to back), ``<name>.metadata.json``, and optionally the JSON export."""
    written = 0
    with ExitStack() as stack:
        out = stack.enter_context(_dump_output(db_dir / f"{name}.bson", job.gzip_dump))
        exporter = stack.enter_context(_JsonArrayWriter(export[0])) if export is not None else None
        for doc in docs:
            out.write(bson.encode(doc))
            if exporter is not None:
                exporter.add(export[1](doc))
            written += 1
    with _dump_output(db_dir / f"{name}.metadata.json", job.gzip_dump) as out:
        out.write(collection_metadata(db_dir.name, name, job.seed).encode())
    return written


def collection_metadata(db: str, collection: str, seed: int) -> str:
    """``<coll>.metadata.json`` as mongodump 100.x writes it: canonical Extended JSON, compact."""
    indexes = [SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])]
    if db == MONGO_DB:
        for coll, key, unique in MONGO_INDEXES:
            if coll != collection:
                continue
            spec = SON([("v", 2), ("key", SON(list(key))), ("name", "_".join(f"{f}_{d}" for f, d in key))])
            if unique:
                spec["unique"] = True
            spec["background"] = True
            indexes.append(spec)
    meta = SON([("indexes", indexes), ("uuid", data.det_uuid(seed, f"collection:{db}.{collection}", 0).hex),
                ("collectionName", collection), ("type", "collection")])
    return json_util.dumps(meta, json_options=json_util.CANONICAL_JSON_OPTIONS, separators=(",", ":"),
                           ensure_ascii=False)


class _JsonArrayWriter:
    """``json.dump(items, f, indent=2, ensure_ascii=False, default=str)``, one item at a time."""

    def __init__(self, path: Path):
        self._path = path
        self._handle: IO[str] | None = None
        self._count = 0

    def __enter__(self) -> "_JsonArrayWriter":
        self._handle = open(self._path, "w", encoding="utf-8")
        return self

    def add(self, item: dict) -> None:
        assert self._handle is not None
        parts = ["[\n  " if self._count == 0 else ",\n  "]
        _indented_json(item, "  ", parts)
        self._handle.write("".join(parts))
        self._count += 1

    def __exit__(self, *exc) -> None:
        assert self._handle is not None
        self._handle.write("\n]" if self._count else "[]")
        self._handle.close()


def _indented_json(value: object, pad: str, parts: list[str]) -> None:
    """``json.dumps(value, indent=2, ensure_ascii=False, default=str)`` at depth ``pad``, appended to ``parts``.

    The same text as json's pure-Python indenting encoder (the C one cannot indent), in about half the time:
    exports run to hundreds of megabytes. Anything not JSON-native (datetimes) is written as its str().
    """
    kind = type(value)
    if kind is str:
        parts.append(encode_basestring(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif kind is float:
        parts.append(json.dumps(value))
    elif kind is dict or kind is list:
        if not value:
            parts.append("{}" if kind is dict else "[]")
            return
        inner = pad + "  "
        opening, separator = ("{\n" if kind is dict else "[\n") + inner, ",\n" + inner
        if kind is dict:
            for number, (key, item) in enumerate(value.items()):
                parts.append((separator if number else opening) + encode_basestring(str(key)) + ": ")
                _indented_json(item, inner, parts)
        else:
            for number, item in enumerate(value):
                parts.append(separator if number else opening)
                _indented_json(item, inner, parts)
        parts.append("\n" + pad + ("}" if kind is dict else "]"))
    else:
        parts.append(encode_basestring(str(value)))


def drop_last_json_array_element(path: Path) -> None:
    """Remove the last element of a file _JsonArrayWriter wrote, reading only its tail."""
    separator = b"\n  },\n  {\n"
    size = path.stat().st_size
    with path.open("r+b") as handle:
        window = 1 << 16
        while True:
            start = max(size - window, 0)
            handle.seek(start)
            tail = handle.read()
            found = tail.rfind(separator)
            if found >= 0:
                handle.seek(start + found)
                handle.truncate()
                handle.write(b"\n  }\n]")
                return
            if start == 0:
                handle.seek(0)
                handle.truncate()
                handle.write(b"[]")
                return
            window *= 4

